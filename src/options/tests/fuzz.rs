//! Random option lists: parsed or refused cleanly, never echoing a secret.

use super::*;
use proptest::prelude::*;

fn option_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            VALID_OPTIONS
                .iter()
                .map(|spec| spec.name.to_string())
                .collect::<Vec<_>>()
        ),
        "[a-z_]{1,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Any option list: no panic, a well-formed error, and no secret value echoed.
    #[test]
    fn any_option_list_is_parsed_or_rejected_cleanly(
        pairs in proptest::collection::vec((option_name(), "\\PC{0,40}"), 0..6),
        is_superuser in any::<bool>(),
    ) {
        for catalog in [Catalog::Wrapper, Catalog::Server, Catalog::UserMapping, Catalog::ForeignTable, Catalog::Column] {
            if let Err(error) = validate(catalog, &pairs, is_superuser) {
                prop_assert_eq!(error.state.code().len(), 5);
                prop_assert!(!error.message.is_empty());
                // Hints never echo a value, so they always read cleanly.
                if let Some(hint) = &error.hint {
                    prop_assert!(!hint.contains("  ") && !hint.contains('\n'), "untidy hint: {}", hint);
                }
                for (name, value) in &pairs {
                    if is_secret(name) && value.chars().count() >= 8 {
                        let text = format!("{} {:?} {:?}", error.message, error.detail, error.hint);
                        prop_assert!(!text.contains(value.as_str()), "secret {} echoed: {}", name, text);
                    }
                }
            }
        }
    }

    /// What other front ends parse (connection options, no catalogs): any hint in
    /// Postgres's words comes with a remedy they can word their own way.
    #[test]
    fn connection_option_errors_carry_a_remedy_for_postgres_words(
        pairs in proptest::collection::vec((option_name(), "\\PC{0,40}"), 0..6),
    ) {
        let connection: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(name, _)| connection_option_names().contains(&name.as_str()))
            .collect();
        if let Err(error) = parse_server(&connection) {
            crate::error::assert_remedied(&error);
        }
    }

    #[test]
    fn any_duration_text_parses_or_is_none(text in "\\PC{0,12}") {
        let _ = parse_duration(&text);
        let _ = parse_millis(&text);
    }
}
