#!/usr/bin/env python3
"""A hostile hoopctl server and OpenID provider on loopback, for
test_cli_hostile.sh: every string it hands the CLI carries terminal escapes
(an OSC 52 clipboard write, an OSC 0 title, erase line and carriage return,
a right-to-left override) or a newline that would forge a line.
   hostile_server.py PORT"""
import base64, json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs

P = "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]0;PWNED\x07\x1b[2K\rFAKE\u202e\nFORGED"
port = int(sys.argv[1])
URL = f"http://127.0.0.1:{port}"


def b64(o):
    return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def raw(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send(self, code, obj):
        self.raw(code, json.dumps(obj).encode())

    def route(self):
        u = urlparse(self.path)
        p, q = u.path, parse_qs(u.query)
        if p == "/healthz":
            return self.send(200, {"ok": True})
        if p == "/api/v1/auth/config":
            return self.send(200, {"issuer": URL + "/idp", "client_id": "hoopctl", "audience": "x", "scopes": "openid"})
        if p == "/idp/.well-known/openid-configuration":
            return self.send(200, {"issuer": URL + "/idp", "device_authorization_endpoint": URL + "/idp/device",
                                   "token_endpoint": URL + "/idp/token", "jwks_uri": URL + "/idp/jwks"})
        if p == "/idp2/.well-known/openid-configuration":  # a provider that refuses, in its own words
            return self.send(200, {"issuer": URL + "/idp2", "device_authorization_endpoint": URL + "/idp2/device",
                                   "token_endpoint": URL + "/idp2/token", "jwks_uri": URL + "/idp2/jwks"})
        if p == "/idp2/device":
            return self.send(400, {"error": "invalid_client" + P, "error_description": "no such client" + P})
        if p == "/idp/device":
            return self.send(200, {"device_code": "dc", "user_code": "ABCD" + P,
                                   "verification_uri": "https://idp.example/" + P,
                                   "verification_uri_complete": "https://idp.example/c" + P,
                                   "expires_in": 60, "interval": 1})
        if p == "/idp/token":
            now = int(time.time())
            claims = {"iss": URL + "/idp", "aud": "hoopctl", "exp": now + 3600, "iat": now, "sub": "alice" + P,
                      "email": "a@x" + P, "name": "N" + P, "groups": ["g" + P]}
            jwt = b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".c2ln"
            return self.send(200, {"access_token": jwt, "id_token": jwt, "token_type": "Bearer", "expires_in": 3600})
        if p == "/api/v1/sessions":
            if q.get("user") == ["notjson"]:  # a 200 that jansson refuses (it holds \u0000)
                return self.raw(200, b'{"sessions": [{"id": "s1", "user": "a\\u0000b", "events": 1}]}')
            if q.get("user") == ["empty"]:
                return self.raw(200, b"")
            return self.send(200, {"sessions": [{"id": "s1" + P, "user": "u" + P, "connection": "c" + P,
                                                 "events": 1}], "next": "cur" + P})
        if p == "/api/v1/reviews":
            return self.send(200, {"reviews": [], "next": "cur" + P})
        if p.endswith("/approve") or p.endswith("/deny"):
            return self.send(200, {"status": "approved" + P})
        if p == "/api/v1/reviews/err500":
            return self.send(500, {"error": "boom" + P})
        if p == "/api/v1/connections":
            return self.send(200, {"connections": [{"name": "db" + P, "host": "h" + P, "database": "d" + P,
                                                    "user": "u" + P, "allowed_groups": ["g" + P],
                                                    "reviewer_groups": ["r" + P]}]})
        if p.startswith("/api/v1/connections/"):
            return self.send(200, {"name": "db" + P, "host": "h" + P, "port": 5432, "database": "d" + P,
                                   "user": "u" + P, "sslmode": "s" + P, "allowed_groups": ["g" + P],
                                   "reviewer_groups": [], "policy": {"note": "\u009b2J" + P}})
        if p == "/api/v1/admin/apikeys":
            return self.send(200, {"apikeys": [{"id": "k" + P, "name": "n" + P, "revoked": False,
                                                "groups": ["g" + P]}]})
        return self.send(500, {"error": "unhandled " + p + P})

    do_GET = do_POST = do_PUT = do_DELETE = route


HTTPServer(("127.0.0.1", port), H).serve_forever()
