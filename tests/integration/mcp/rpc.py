# rpc.py — a bare JSON-RPC client of `hoopctl mcp` over stdio for the tests
# that need what the SDK client hides: raw requests, whether an id was
# answered at all, and the server process itself (its pid, its memory).
#   from rpc import Mcp; m = Mcp([bin, 'mcp', '--dsn', dsn]); m.tool('query', {...})
import json, os, select, subprocess, time


class Mcp:
    def __init__(self, argv, stderr_path=None, env=None):
        e = dict(os.environ)
        e.pop('PGPASSWORD', None)  # what the server needs must be in its DSN
        if env:
            e.update(env)
        self.err = open(stderr_path or os.devnull, 'wb')
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, env=e)
        self.buf = b''
        self.id = 0
        r = self.req('initialize', {'protocolVersion': '2025-06-18', 'capabilities': {},
                                    'clientInfo': {'name': 'rpc.py', 'version': '0'}})
        assert 'result' in r, r
        self.send({'jsonrpc': '2.0', 'method': 'notifications/initialized'})

    def send(self, msg):
        self.p.stdin.write((json.dumps(msg) + '\n').encode())
        self.p.stdin.flush()

    def line(self, timeout):
        """The next line of stdout, or None after timeout seconds without one."""
        end = time.time() + timeout
        while b'\n' not in self.buf:
            left = end - time.time()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                return None
            d = os.read(self.p.stdout.fileno(), 1 << 20)
            if not d:
                return None
            self.buf += d
        l, self.buf = self.buf.split(b'\n', 1)
        return l

    def req(self, method, params=None, timeout=60):
        """Send a request; its response (an error is returned, not raised).
        Fails when the server answers nothing within timeout seconds."""
        self.id += 1
        m = {'jsonrpc': '2.0', 'id': self.id, 'method': method}
        if params is not None:
            m['params'] = params
        self.send(m)
        l = self.line(timeout)
        assert l is not None, f'no response to {method} (id {self.id}) within {timeout}s'
        r = json.loads(l)
        assert r.get('id') == self.id, f'response to id {r.get("id")}, expected {self.id}: {r}'
        return r

    def tool(self, name, args, timeout=60):
        """Call a tool: (is_error, text, parsed JSON or None)."""
        r = self.req('tools/call', {'name': name, 'arguments': args}, timeout)
        assert 'result' in r, f'{name} {args!r:.200}: {r!r:.500}'
        text = r['result']['content'][0]['text']
        try:
            j = json.loads(text)
        except ValueError:
            j = None
        return r['result'].get('isError') is True, text, j

    def ok(self, sql, **kw):
        """Run a query that must succeed; its result body."""
        err, text, j = self.tool('query', {'sql': sql, **kw})
        assert not err, f'{sql}: {text:.500}'
        return j

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(30)
        self.err.close()
        assert rc == 0, f'hoopctl mcp exited with {rc}'
