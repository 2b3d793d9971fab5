

def test_the_serve_command_holds_its_home_from_its_start(folder, tmp_path):
    """`packettotal serve` itself (a process of its own, nothing uploaded yet): `analyze` and a
    second `serve` on its home stop with one line each."""
    import os
    import socket
    import subprocess

    from .test_cli import EXE
    home = tmp_path / "home"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PACKETTOTAL_HOME": str(home), "PACKETTOTAL_ENGINES": "1"}
    served = subprocess.Popen([str(EXE), "serve", "--port", str(port), "--no-demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/captures", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert served.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        p = run(home, "analyze", str(folder))
        assert p.returncode == 2 and p.stdout == b"", p.stderr.decode()
        lines = p.stderr.decode().splitlines()
        assert lines[-1].startswith("packettotal: another PacketTotal process") and "Traceback" not in p.stderr.decode()
        assert all(x.startswith("skipped ") for x in lines[:-1])  # the folder was walked; nothing analysed
        second = run(home, "serve", "--port", "0", "--no-demo")
        assert second.returncode == 2 and "another PacketTotal process" in second.stderr.decode()
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/captures", timeout=5).json() == []
    finally:
        served.terminate()
        served.wait(30)
