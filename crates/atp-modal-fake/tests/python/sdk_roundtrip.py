"""Modal's official Python SDK against the fake Modal.

Run with MODAL_SERVER_URL=http://127.0.0.1:PORT, dummy MODAL_TOKEN_ID/MODAL_TOKEN_SECRET and
MODAL_SANDBOX_V2=0 (the SDK's SandboxCreate path, the one atp uses). Prints one line per step;
exits nonzero on any mismatch.
"""
import sys

import modal


def main() -> int:
    app = modal.App.lookup("atp-sdk-check", create_if_missing=True)
    print("app", app.app_id, flush=True)
    image = modal.Image.from_name("open-atp")
    sb = modal.Sandbox.create(app=app, image=image, timeout=120)
    print("sandbox", sb.object_id, flush=True)
    try:
        p = sb.exec("echo", "hello")
        out = p.stdout.read()
        code = p.wait()
        print("exec", repr(out), code, flush=True)
        if out != "hello\n" or code != 0:
            print("MISMATCH: expected 'hello\\n' and exit 0", flush=True)
            return 1
        p = sb.exec("sh", "-c", "echo oops >&2; exit 7")
        err = p.stderr.read()
        code = p.wait()
        print("exec2", repr(err), code, flush=True)
        if err != "oops\n" or code != 7:
            print("MISMATCH: expected 'oops\\n' on stderr and exit 7", flush=True)
            return 1
        p = sb.exec("cat")
        p.stdin.write(b"from sdk stdin\n")
        p.stdin.write_eof()
        p.stdin.drain()
        out = p.stdout.read()
        code = p.wait()
        print("exec3", repr(out), code, flush=True)
        if out != "from sdk stdin\n" or code != 0:
            print("MISMATCH: expected stdin echoed by cat", flush=True)
            return 1
    finally:
        sb.terminate()
    print("terminated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
