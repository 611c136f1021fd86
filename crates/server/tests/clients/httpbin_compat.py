#!/usr/bin/env python3
"""Python requests against statuslab's httpbin / go-httpbin routes, written from their documented
behaviour: every endpoint, every documented parameter, the JSON shapes.

Usage: httpbin_compat.py BASE_URL

Prints a JSON object mapping each check's name to "ok" or the reason it failed.
Exit status 3 means a module is missing (run scripts/test-deps.sh).
"""

import base64
import hashlib
import json
import sys
import time
import zlib

try:
    import requests
    from requests.auth import HTTPDigestAuth
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"missing Python module ({e}); run scripts/test-deps.sh\n")
    sys.exit(3)

BASE = sys.argv[1]
CHECKS = {}
T = (5, 10)


def check(fn):
    try:
        fn()
        CHECKS[fn.__name__] = "ok"
    except Exception as e:  # noqa: BLE001 - the reason is the result
        CHECKS[fn.__name__] = f"{type(e).__name__}: {e}"
    return fn


def eq(got, want, what=""):
    assert got == want, f"{what}: got {got!r}, want {want!r}"


def get(path, **kw):
    kw.setdefault("timeout", T)
    return requests.get(BASE + path, **kw)


@check
def get_shape():
    r = get("/get?a=1&a=2&b=x", headers={"X-Test": "yes"})
    eq(r.status_code, 200)
    j = r.json()
    eq(sorted(j), ["args", "headers", "origin", "url"], "keys")
    eq(j["args"], {"a": ["1", "2"], "b": "x"}, "args")
    eq(j["headers"]["X-Test"], "yes", "headers")
    eq(j["headers"]["User-Agent"].startswith("python-requests/"), True, "User-Agent")
    eq(j["origin"], "127.0.0.1", "origin")
    eq(j["url"], BASE + "/get?a=1&a=2&b=x", "url")


@check
def post_form():
    r = requests.post(BASE + "/post", data={"k": "v", "n": ["1", "2"]}, timeout=T)
    j = r.json()
    eq(sorted(j), ["args", "data", "files", "form", "headers", "json", "origin", "url"], "keys")
    eq(j["form"], {"k": "v", "n": ["1", "2"]}, "form")
    eq(j["data"], "", "data")
    eq(j["json"], None, "json")


@check
def post_json():
    r = requests.post(BASE + "/post", json={"a": [1, 2], "b": None}, timeout=T)
    j = r.json()
    eq(j["json"], {"a": [1, 2], "b": None}, "json")
    eq(json.loads(j["data"]), {"a": [1, 2], "b": None}, "data")
    eq(j["headers"]["Content-Type"], "application/json", "Content-Type")


@check
def post_multipart():
    files = {"upload": ("hello.txt", b"hello\r\nworld", "text/plain"),
             "blob": ("b.bin", b"\xff\x00\xfe", "application/x-thing")}
    r = requests.post(BASE + "/post", data={"field": "value"}, files=files, timeout=T)
    j = r.json()
    eq(j["form"], {"field": "value"}, "form")
    eq(j["files"]["upload"], "hello\r\nworld", "text file")
    eq(j["files"]["blob"], "data:application/x-thing;base64," + base64.b64encode(b"\xff\x00\xfe").decode(), "binary file")


@check
def post_binary_data():
    r = requests.post(BASE + "/post", data=b"\x00\xff", headers={"Content-Type": "application/octet-stream"}, timeout=T)
    eq(r.json()["data"], "data:application/octet-stream;base64,AP8=", "data")


@check
def put_patch_delete():
    for m in ["put", "patch", "delete"]:
        r = requests.request(m.upper(), BASE + "/" + m, data="raw text", timeout=T)
        eq(r.status_code, 200, m)
        eq(r.json()["data"], "raw text", m)


@check
def wrong_method_is_405_with_allow():
    for path, allowed in [("/get", "GET, HEAD, OPTIONS"), ("/post", "POST, OPTIONS"),
                          ("/put", "PUT, OPTIONS"), ("/patch", "PATCH, OPTIONS"),
                          ("/delete", "DELETE, OPTIONS")]:
        m = "POST" if path == "/get" else "GET"
        r = requests.request(m, BASE + path, timeout=T)
        eq(r.status_code, 405, path)
        eq(r.headers["Allow"], allowed, path)


@check
def anything_any_method():
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"]:
        r = requests.request(m, BASE + "/anything/x/y?q=1", json={"m": m}, timeout=T)
        j = r.json()
        eq(j["method"], m, "method")
        eq(j["url"], BASE + "/anything/x/y?q=1", "url")
        eq(j["args"], {"q": "1"}, "args")
        eq(j["json"], {"m": m}, "json")
    eq(requests.head(BASE + "/anything", timeout=T).status_code, 200, "HEAD")


@check
def headers_ip_user_agent_uuid():
    eq(get("/headers", headers={"X-A": "1"}).json()["headers"]["X-A"], "1", "headers")
    eq(get("/ip").json(), {"origin": "127.0.0.1"}, "ip")
    eq(get("/user-agent", headers={"User-Agent": "ua/1"}).json(), {"user-agent": "ua/1"}, "user-agent")
    u = get("/uuid").json()["uuid"]
    eq(len(u), 36, "uuid length")
    eq(u[14], "4", "uuid version")
    assert get("/uuid").json()["uuid"] != u, "uuids differ"


@check
def dump_request():
    r = requests.post(BASE + "/dump/request?x=1", data="body!", headers={"X-Dump": "d"}, timeout=T)
    text = r.text
    assert text.startswith("POST /dump/request?x=1 HTTP/1.1\r\n"), text
    assert "\r\nx-dump: d\r\n" in text, text
    assert text.endswith("\r\n\r\nbody!"), text


@check
def delay():
    t = time.monotonic()
    r = get("/delay/0.3?k=v")
    eq(r.status_code, 200)
    assert time.monotonic() - t >= 0.3, "waited"
    eq(r.json()["args"], {"k": "v"}, "args")
    eq(get("/delay/100000").status_code, 400, "past --max-delay")
    eq(get("/delay/100000").headers["Content-Type"], "application/problem+json", "problem")
    assert "--max-delay" in get("/delay/100000").json()["detail"]


@check
def drip():
    t = time.monotonic()
    r = get("/drip?numbytes=5&duration=0.5&delay=0.2&code=202")
    eq(r.status_code, 202)
    eq(r.content, b"*****", "content")
    eq(r.headers["Content-Length"], "5", "length")
    assert time.monotonic() - t >= 0.6, "paced"
    eq(get("/drip?numbytes=99999999999").status_code, 400, "past --max-body")
    eq(get("/drip?duration=100000").status_code, 400, "past --max-delay")


@check
def stream_lines():
    r = get("/stream/4?x=y", stream=True)
    eq(r.headers.get("Transfer-Encoding"), "chunked", "chunked")
    lines = [json.loads(line) for line in r.iter_lines() if line]
    eq([line["id"] for line in lines], [0, 1, 2, 3], "ids")
    eq(lines[0]["args"], {"x": "y"}, "args")
    eq(sorted(lines[0]), ["args", "headers", "id", "origin", "url"], "keys")
    eq(get("/stream/101").status_code, 400, "past 100")


@check
def bytes_seeded():
    a, b = get("/bytes/64?seed=7"), get("/bytes/64?seed=7")
    eq(len(a.content), 64, "length")
    eq(a.content, b.content, "same seed, same bytes")
    assert get("/bytes/64?seed=8").content != a.content, "another seed"
    eq(a.headers["Content-Type"], "application/octet-stream", "type")
    eq(get("/bytes/99999999999").status_code, 400, "past --max-body")


@check
def stream_bytes():
    r = get("/stream-bytes/1000?seed=3&chunk_size=100")
    eq(len(r.content), 1000, "length")
    eq(r.headers.get("Transfer-Encoding"), "chunked", "chunked")
    eq(r.content, get("/stream-bytes/1000?seed=3").content, "seeded")


@check
def range_requests():
    r = get("/range/26")
    eq(r.content, b"abcdefghijklmnopqrstuvwxyz", "whole")
    eq(r.headers["Accept-Ranges"], "bytes", "Accept-Ranges")
    eq(r.headers["ETag"], '"range26"', "ETag")
    r = get("/range/100", headers={"Range": "bytes=10-14"})
    eq(r.status_code, 206, "206")
    eq(r.content, b"klmno", "part")
    eq(r.headers["Content-Range"], "bytes 10-14/100", "Content-Range")
    r = get("/range/100", headers={"Range": "bytes=-3"})
    eq(r.content, b"tuv", "suffix")
    r = get("/range/100", headers={"Range": "bytes=0-1,50-51"})
    assert r.headers["Content-Type"].startswith("multipart/byteranges"), r.headers
    r = get("/range/100", headers={"Range": "bytes=200-"})
    eq(r.status_code, 416, "416")
    eq(r.headers["Content-Range"], "bytes */100", "416 Content-Range")


@check
def links():
    r = get("/links/5/2")
    assert "<a href='/links/5/0'>0</a>" in r.text and "2 <a" in r.text, r.text
    r = get("/links/5")
    eq(r.url, BASE + "/links/5/0", "redirected")
    eq(get("/links/201/0").status_code, 400, "past 200")


@check
def sse():
    r = get("/sse?count=3&duration=300ms&delay=0", stream=True)
    eq(r.headers["Content-Type"], "text/event-stream", "type")
    events = [e for e in r.text.split("\n\n") if e]
    eq(len(events), 3, "count")
    first = dict(line.split(": ", 1) for line in events[0].split("\n"))
    eq(first["event"], "ping", "event")
    eq(json.loads(first["data"])["id"], 0, "data")


@check
def trailers():
    r = get("/trailers?X-Checksum=abc", stream=True)
    eq(r.headers["Trailer"], "x-checksum", "announced")
    eq(r.json()["args"], {"X-Checksum": "abc"}, "body")
    eq(get("/trailers?Content-Length=1").status_code, 400, "framing field")


@check
def unstable():
    eq(get("/unstable?failure_rate=0").status_code, 200, "never fails")
    eq(get("/unstable?failure_rate=1").status_code, 500, "always fails")
    a = [get(f"/unstable?seed={s}").status_code for s in range(8)]
    b = [get(f"/unstable?seed={s}").status_code for s in range(8)]
    eq(a, b, "seeded")
    eq(get("/unstable?failure_rate=2").status_code, 400, "bad rate")


@check
def redirects():
    r = get("/redirect/3")
    eq(r.status_code, 200, "final")
    eq(r.url, BASE + "/get", "ends at /get")
    eq([h.status_code for h in r.history], [302, 302, 302], "hops")
    eq(r.history[0].headers["Location"], "/relative-redirect/2", "relative")
    r = get("/redirect/2?absolute=true")
    eq(r.history[0].headers["Location"], BASE + "/absolute-redirect/1", "absolute")
    r = get("/absolute-redirect/2")
    eq(r.history[1].headers["Location"], BASE + "/get", "absolute end")
    r = get("/relative-redirect/2")
    eq(r.history[1].headers["Location"], "/get", "relative end")
    eq(get("/redirect/0", allow_redirects=False).status_code, 400, "zero")
    eq(get("/redirect/101", allow_redirects=False).status_code, 400, "past 100")


@check
def redirect_to():
    r = get("/redirect-to?url=/get&status_code=307", allow_redirects=False)
    eq(r.status_code, 307, "307")
    eq(r.headers["Location"], "/get", "Location")
    r = requests.post(BASE + "/redirect-to?url=/anything", data="x", allow_redirects=False, timeout=T)
    eq(r.status_code, 302, "POST")
    r = get("/redirect-to?url=" + BASE + "/get")
    eq(r.url, BASE + "/get", "own host")
    r = get("/redirect-to?url=http://example.com/", allow_redirects=False)
    eq(r.status_code, 400, "other host")
    assert "--redirect-allow" in r.json()["detail"], r.text
    eq(get("/redirect-to?url=/get&status_code=200", allow_redirects=False).status_code, 400, "not 3xx")


@check
def cookies():
    s = requests.Session()
    r = s.get(BASE + "/cookies/set?k1=v1&k2=v2", timeout=T)
    eq(r.history[0].status_code, 302, "302")
    eq(r.json(), {"cookies": {"k1": "v1", "k2": "v2"}}, "set")
    r = s.get(BASE + "/cookies/set/k3/v3", timeout=T)
    eq(r.json()["cookies"]["k3"], "v3", "path set")
    r = s.get(BASE + "/cookies/delete?k1", timeout=T)
    eq(r.json(), {"cookies": {"k2": "v2", "k3": "v3"}}, "deleted")
    eq(get("/cookies", cookies={"a": "b"}).json(), {"cookies": {"a": "b"}}, "sent")
    eq(get("/cookies/set?bad%20name=v", allow_redirects=False).status_code, 400, "bad name")


@check
def formats():
    j = get("/json")
    eq(j.headers["Content-Type"], "application/json", "json type")
    assert "slides" in j.json()["slideshow"], j.text
    h = get("/html")
    assert h.headers["Content-Type"].startswith("text/html") and "<h1>" in h.text
    x = get("/xml")
    eq(x.headers["Content-Type"], "application/xml", "xml type")
    assert x.text.startswith("<?xml"), x.text
    eq(get("/robots.txt").text, "User-agent: *\nDisallow: /deny\n", "robots")
    assert "SHOULDN'T" in get("/deny").text
    u = get("/encoding/utf8")
    assert "charset=utf-8" in u.headers["Content-Type"] and "∮" in u.text


@check
def images():
    magic = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF", "svg": b"<svg"}
    types = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "svg": "image/svg+xml"}
    for kind, m in magic.items():
        r = get("/image/" + kind)
        eq(r.headers["Content-Type"], types[kind], kind)
        assert r.content.startswith(m), kind
        r = get("/image", headers={"Accept": types[kind]})
        eq(r.headers["Content-Type"], types[kind], "Accept " + kind)
    eq(get("/image", headers={"Accept": "*/*"}).headers["Content-Type"], "image/png", "*/*")
    eq(get("/image", headers={"Accept": "text/plain"}).status_code, 406, "406")
    eq(get("/image/gif").status_code, 404, "unknown kind")


@check
def encodings():
    r = get("/gzip")
    eq(r.headers["Content-Encoding"], "gzip", "gzip")
    eq(r.json()["gzipped"], True, "gzipped")
    eq(sorted(r.json()), ["gzipped", "headers", "method", "origin"], "keys")
    r = get("/deflate")
    eq(r.json()["deflated"], True, "deflated")
    for path, token in [("/brotli", "br"), ("/zstd", "zstd")]:
        r = get(path, stream=True)
        eq(r.headers["Content-Encoding"], token, path)
        raw = r.raw.read(decode_content=False)
        assert raw[:1] != b"{", path
    raw = get("/deflate", stream=True).raw.read(decode_content=False)
    eq(json.loads(zlib.decompress(raw))["deflated"], True, "zlib framing")


@check
def base64_decode():
    eq(get("/base64/" + base64.urlsafe_b64encode(b"statuslab?>").decode()).text, "statuslab?>", "decoded")
    eq(get("/base64/aGk").text, "hi", "unpadded")
    eq(get("/base64/!!!").status_code, 400, "invalid")


@check
def caching():
    r = get("/cache")
    eq(r.status_code, 200, "200")
    assert "Last-Modified" in r.headers and "ETag" in r.headers, r.headers
    eq(get("/cache", headers={"If-Modified-Since": r.headers["Last-Modified"]}).status_code, 304, "IMS")
    eq(get("/cache", headers={"If-None-Match": r.headers["ETag"]}).status_code, 304, "INM")
    r = get("/cache/60")
    eq(r.headers["Cache-Control"], "public, max-age=60", "max-age")
    eq(sorted(r.json()), ["args", "headers", "origin", "url"], "echo")


@check
def etags():
    r = get("/etag/abc")
    eq(r.headers["ETag"], '"abc"', "ETag")
    eq(get("/etag/abc", headers={"If-None-Match": '"abc"'}).status_code, 304, "INM strong")
    eq(get("/etag/abc", headers={"If-None-Match": 'W/"abc"'}).status_code, 304, "INM weak comparison")
    eq(get("/etag/abc", headers={"If-None-Match": '"x", "abc"'}).status_code, 304, "INM list")
    eq(get("/etag/abc", headers={"If-None-Match": "*"}).status_code, 304, "INM *")
    eq(get("/etag/abc", headers={"If-None-Match": '"x"'}).status_code, 200, "INM other")
    eq(get("/etag/abc", headers={"If-Match": '"abc"'}).status_code, 200, "IM match")
    eq(get("/etag/abc", headers={"If-Match": 'W/"abc"'}).status_code, 412, "IM strong comparison")
    eq(get("/etag/abc", headers={"If-Match": '"x"'}).status_code, 412, "IM other")
    eq(get("/etag/abc", headers={"If-Match": "*"}).status_code, 200, "IM *")


@check
def response_headers():
    r = get("/response-headers?X-One=1&X-Two=a&X-Two=b")
    eq(r.headers["X-One"], "1", "set")
    eq(r.headers["X-Two"], "a, b", "repeated")
    j = r.json()
    eq(j["X-One"], "1", "body")
    eq(j["X-Two"], ["a", "b"], "body list")
    eq(j["Content-Type"], "application/json", "body content type")
    r = requests.post(BASE + "/response-headers?X-P=p", timeout=T)
    eq(r.headers["X-P"], "p", "POST")
    eq(get("/response-headers?Content-Type=text/plain").headers["Content-Type"], "text/plain", "replaces type")
    eq(get("/response-headers?Transfer-Encoding=chunked").status_code, 400, "framing")


@check
def digest_auth():
    for path in ["/digest-auth/auth/user/pass", "/digest-auth/auth/user/pass/MD5",
                 "/digest-auth/auth/user/pass/SHA-256", "/digest-auth/auth,auth-int/user/pass",
                 "/digest-auth/auth/user/pass/MD5/never"]:
        r = get(path, auth=HTTPDigestAuth("user", "pass"))
        eq(r.status_code, 200, path)
        eq(r.json(), {"authenticated": True, "user": "user"}, path)
    r = get("/digest-auth/auth/user/pass")
    eq(r.status_code, 401, "no credentials")
    ch = r.headers["WWW-Authenticate"]
    assert ch.startswith("Digest ") and 'qop="auth"' in ch and "algorithm=MD5" in ch, ch
    assert "algorithm=SHA-256" in get("/digest-auth/auth/u/p/SHA-256").headers["WWW-Authenticate"]
    eq(get("/digest-auth/auth/user/pass", auth=HTTPDigestAuth("user", "wrong")).status_code, 401, "wrong")
    eq(get("/digest-auth/bogus/user/pass").status_code, 400, "bad qop")
    eq(get("/digest-auth/auth/user/pass/SHA-1").status_code, 400, "bad algorithm")


def digest_header(path, nonce, nc, qop="auth", algorithm="MD5", body=b"", passwd="p"):
    """A hand-made Digest Authorization value (RFC 7616), for what requests does not do."""
    def h(data):
        data = data if isinstance(data, bytes) else data.encode()
        return hashlib.new("sha256" if algorithm == "SHA-256" else "md5", data).hexdigest()
    ha1 = h(f"u:statuslab:{passwd}")
    ha2 = h(f"GET:{path}:{h(body)}") if qop == "auth-int" else h("GET:" + path)
    resp = h(f"{ha1}:{nonce}:{nc}:cn:{qop}:{ha2}")
    return (f'Digest username="u", realm="statuslab", nonce="{nonce}", uri="{path}", '
            f'algorithm={algorithm}, qop={qop}, nc={nc}, cnonce="cn", response="{resp}"')


def nonce_of(path):
    ch = get(path).headers["WWW-Authenticate"]
    return ch.split('nonce="')[1].split('"')[0]


@check
def digest_auth_int():
    for algorithm in ["MD5", "SHA-256"]:
        path = f"/digest-auth/auth-int/u/p/{algorithm}"
        assert 'qop="auth-int"' in get(path).headers["WWW-Authenticate"]
        a = digest_header(path, nonce_of(path), "00000001", "auth-int", algorithm)
        eq(get(path, headers={"Authorization": a}).status_code, 200, algorithm)
        a = digest_header(path, nonce_of(path), "00000001", "auth-int", algorithm, passwd="x")
        eq(get(path, headers={"Authorization": a}).status_code, 401, algorithm + " wrong")


@check
def digest_stale_after():
    # The second use of a nonce (nc=2) is past stale_after=1.
    path = "/digest-auth/auth/u/p/MD5/1"
    nonce = nonce_of(path)
    ok = get(path, headers={"Authorization": digest_header(path, nonce, "00000001")})
    eq(ok.status_code, 200, "first use")
    r = get(path, headers={"Authorization": digest_header(path, nonce, "00000002")})
    eq(r.status_code, 401, "stale")
    assert "stale=TRUE" in r.headers["WWW-Authenticate"], r.headers


@check
def basic_auth_and_bearer():
    eq(get("/basic-auth/u/p", auth=("u", "p")).json(), {"authenticated": True, "user": "u"}, "basic")
    eq(get("/hidden-basic-auth/u/p").status_code, 404, "hidden")
    eq(get("/bearer", headers={"Authorization": "Bearer t"}).json()["token"], "t", "bearer")


@check
def status_codes():
    eq(get("/status/418").status_code, 418, "418")
    eq(get("/status/201").status_code, 201, "201")


print(json.dumps(CHECKS))
