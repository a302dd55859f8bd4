#!/usr/bin/env bash
# Packages of aws_sts for the PostgreSQL that PG_CONFIG (or PG=15|18) names, and their test.
#
#   tests/package.sh build   # `make package`: in target/package,
#                            #   aws_sts-<version>-pg<major>-<arch>.tar.gz (unpack with tar -C /)
#                            #   postgresql-<major>-aws-sts_<version>_<arch>.deb (Debian's
#                            #   postgresql-<major> layout only: /usr/lib/postgresql/<major>/lib)
#   tests/package.sh check   # installs the .deb with dpkg -i, runs the seed query on a
#                            # cluster of its own, removes the package with dpkg -r, and puts
#                            # back the files `make install` had installed
set -euo pipefail

. "$(dirname "$0")/env.sh"
cd "$ROOT"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
OUT=$ROOT/target/package
STAGE=$OUT/aws_sts-$VERSION-pg$PG_MAJOR
TARBALL=$OUT/aws_sts-$VERSION-pg$PG_MAJOR-$ARCH.tar.gz
DEB_NAME=postgresql-$PG_MAJOR-aws-sts
DEB=$OUT/${DEB_NAME}_${VERSION}_$ARCH.deb

build() {
    rm -rf "$STAGE" "$STAGE.deb" "$TARBALL" "$DEB"
    mkdir -p "$OUT"
    cargo pgrx package --pg-config "$PG_CONFIG" --no-default-features --features "pg$PG_MAJOR" --out-dir "$STAGE"
    # pgrx copies the generated script and the upgrade scripts; older versions' install
    # scripts are ours to add.
    cp sql/aws_sts--0.1.0.sql "$STAGE$EXTDIR/"
    # As Debian's packages are: without the symbol tables (unwinding keeps .eh_frame).
    strip --strip-unneeded "$STAGE$PKGLIBDIR/aws_sts.so"
    local doc=$STAGE/usr/share/doc/$DEB_NAME
    mkdir -p "$doc"
    cp README.md CHANGELOG.md "$doc/"
    cp LICENSE "$doc/copyright"
    tar -C "$STAGE" --owner=0 --group=0 -czf "$TARBALL" .
    echo "package: $TARBALL"

    if [ "$PKGLIBDIR" != "/usr/lib/postgresql/$PG_MAJOR/lib" ] || ! command -v dpkg-deb >/dev/null; then
        echo "package: no .deb ($PG_CONFIG is not Debian's postgresql-$PG_MAJOR, or dpkg-deb is missing)"
        return
    fi
    local root=$STAGE.deb glibc
    cp -a "$STAGE" "$root"
    mkdir -p "$root/DEBIAN"
    # The newest glibc symbol version the library uses: the package runs on any libc6 that
    # has it (nothing else is linked: Rust's code is all in the .so).
    glibc=$(objdump -T "$root$PKGLIBDIR/aws_sts.so" | sed -n 's/.*GLIBC_\([0-9.]*\).*/\1/p' | sort -V | tail -n 1)
    cat >"$root/DEBIAN/control" <<EOF
Package: $DEB_NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: aws_sts developers <aws-sts@localhost>
Depends: postgresql-$PG_MAJOR, libc6 (>= $glibc), libgcc-s1
Section: database
Priority: optional
Installed-Size: $(du -sk "$STAGE" | cut -f1)
Description: AWS STS caller identity as a PostgreSQL foreign data wrapper
 aws_sts answers "who am I in AWS?" from SQL: a Steampipe-compatible
 aws_sts_caller_identity foreign table (STS GetCallerIdentity) for
 PostgreSQL $PG_MAJOR, with servers, user mappings and aggregators.
EOF
    dpkg-deb --root-owner-group --build "$root" "$DEB" >/dev/null
    rm -rf "$root"
    echo "package: $DEB"
}

# Puts back what `make install` had installed (set aside by check).
restore() {
    "${CLUSTER[@]}" stop || true
    dpkg -r "$DEB_NAME" >/dev/null 2>&1 || true
    mv "$SAVED"/aws_sts.so "$PKGLIBDIR/"
    mv "$SAVED"/aws_sts.control "$SAVED"/aws_sts--*.sql "$EXTDIR/"
}

check() {
    if [ "$PKGLIBDIR" != "/usr/lib/postgresql/$PG_MAJOR/lib" ]; then
        echo "package: no .deb for $PG_CONFIG (not Debian's postgresql-$PG_MAJOR): nothing to check"
        return
    fi
    [ -f "$DEB" ] || { echo "package: no $DEB: run make package" >&2; exit 1; }
    # What `make install` put there is set aside, so that only the package provides aws_sts
    # during the check, and put back however the check ends.
    # Globals: the EXIT trap runs after check's locals are gone.
    SAVED=$OUT/installed
    local port=$((AWS_STS_TEST_PGPORT + 20))
    CLUSTER=(env AWS_STS_TEST_PGPORT="$port" AWS_STS_SCRATCH="/tmp/aws_sts-scratch-$port" tests/cluster.sh)
    rm -rf "$SAVED" && mkdir -p "$SAVED"
    mv "$PKGLIBDIR/aws_sts.so" "$EXTDIR"/aws_sts.control "$EXTDIR"/aws_sts--*.sql "$SAVED/"
    trap restore EXIT

    dpkg -i "$DEB"
    dpkg -s "$DEB_NAME" | grep -q '^Status: install ok installed'
    echo "package: dpkg -i installed $(dpkg -L "$DEB_NAME" | grep -c -E '\.(so|sql|control)$') files of aws_sts"
    # Nothing of Rust's is needed at run time: the library links only what libc6 and
    # libgcc-s1 (the package's dependencies) provide.
    local needed
    needed=$(objdump -p "$PKGLIBDIR/aws_sts.so" | awk '/NEEDED/ { print $2 }' | sort | tr '\n' ' ')
    echo "package: aws_sts.so needs $needed"
    if [ -n "$(printf '%s\n' $needed | grep -v -x -E 'libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2')" ]; then
        echo "package: aws_sts.so needs a library the package does not depend on" >&2
        exit 1
    fi

    rm -rf "/tmp/aws_sts-scratch-$port"
    "${CLUSTER[@]}" start >/dev/null
    eval "$(tests/seed_moto.sh)"
    local psql=(env PGOPTIONS="-c client_min_messages=warning" "${CLUSTER[@]}" psql -v ON_ERROR_STOP=1 -qAt -d postgres)
    "${psql[@]}" -c "CREATE EXTENSION aws_sts" \
        -c "CREATE SERVER aws FOREIGN DATA WRAPPER aws_sts OPTIONS (endpoint_url 'http://127.0.0.1:$AWS_STS_TEST_MOTO_PORT', region 'us-east-1')" \
        -c "CREATE USER MAPPING FOR CURRENT_USER SERVER aws OPTIONS (access_key '$ALICE_ACCESS_KEY', secret_key '$ALICE_SECRET_KEY')" \
        -c "IMPORT FOREIGN SCHEMA aws FROM SERVER aws INTO public"
    local version arn expected_arn=arn:aws:iam::123456789012:user/Alice
    version=$("${psql[@]}" -c "SELECT extversion FROM pg_extension WHERE extname = 'aws_sts'")
    arn=$("${psql[@]}" -c "SELECT arn FROM aws_sts_caller_identity")
    echo "package: CREATE EXTENSION gave version $version; the seed query answered $arn"
    [ "$version" = "$VERSION" ] && [ "$arn" = "$expected_arn" ] || { echo "package: expected $VERSION and $expected_arn" >&2; exit 1; }
    "${psql[@]}" -c "DROP EXTENSION aws_sts CASCADE"
    "${CLUSTER[@]}" stop

    dpkg -r "$DEB_NAME" >/dev/null
    if [ -e "$PKGLIBDIR/aws_sts.so" ] || ls "$EXTDIR"/aws_sts* >/dev/null 2>&1; then
        echo "package: dpkg -r left aws_sts files behind" >&2
        exit 1
    fi
    echo "package: dpkg -r removed every file"
}

case "${1:-}" in
build) build ;;
check) check ;;
*)
    echo "usage: $0 build|check" >&2
    exit 2
    ;;
esac
