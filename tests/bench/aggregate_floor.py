"""The floor of the aggregator benchmark: N GetCallerIdentity requests, one per member's
access key, sent straight to the delay proxy from N threads (at most CONCURRENCY at a time),
with no Postgres and no SDK. moto answers one request at a time (~5 ms of Python each), so
this is what the machine allows any client. Checks every answer is the member's own role.
Usage: aggregate_floor.py PROXY_PORT KEYS_FILE N CONCURRENCY; prints the wall time in ms."""
import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor

port, keys_file, count, concurrency = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keys = [line.strip() for line in open(keys_file) if line.strip()][:count]
body = "Action=GetCallerIdentity&Version=2011-06-15"


def call(access_key):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/", body, {
        "Content-Type": "application/x-www-form-urlencoded",
        # moto does not check signatures; the credential scope names the caller.
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/us-east-1/sts/aws4_request, "
                         "SignedHeaders=host, Signature=00",
    })
    answer = connection.getresponse().read().decode()
    connection.close()
    start = answer.index("<Arn>") + 5
    return answer[start:answer.index("</Arn>")]


started = time.monotonic()
with ThreadPoolExecutor(max_workers=min(concurrency, count)) as pool:
    arns = list(pool.map(call, keys))
elapsed_ms = (time.monotonic() - started) * 1000
if len(set(arns)) != count or not all(":assumed-role/bench-role-" in arn for arn in arns):
    sys.exit(f"aggregate floor: wrong answers {arns[:3]}")
print(round(elapsed_ms))
