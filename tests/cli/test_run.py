"""``parallax run``: pssh's flags, status lines and exit statuses, with the installed command against the test sshd."""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from cli_helpers import STATUS, clean_env, cli, lab_flags


def test_status_lines_one_per_host_numbered_in_order(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "-p", "2", "hostname")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 4 and r.err == ""
    found = [STATUS.match(line) for line in lines]
    assert all(found), lines
    assert [int(m.group(1)) for m in found] == [1, 2, 3, 4]
    assert {m.group(3) for m in found} == {"SUCCESS"}
    assert sorted(m.group(4) for m in found) == sorted(lab.hosts)
    assert all(m.group(5) is None for m in found)  # nothing after the host on success
    for m in found:
        time.strptime(m.group(2), "%H:%M:%S")  # a real clock time, as pssh stamps it


def test_inline_shows_stdout_then_stderr_and_nonzero_exit_is_5(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "-i", "echo out; echo err >&2; exit 3")
    assert r.rc == 5, r.err
    lines = r.out.splitlines()
    assert len(lines) == 12
    for i in range(0, 12, 3):
        m = STATUS.match(lines[i])
        assert m and m.group(3) == "FAILURE" and m.group(5) == "Exited with error code 3", lines[i]
        assert lines[i + 1] == "out"
        assert lines[i + 2] == "Stderr: err"


def test_inline_stdout_shows_stdout_only(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "--inline-stdout", "echo out; echo err >&2")
    assert r.rc == 0, r.err
    assert r.out.count("\nout\n") + r.out.startswith("out\n") == 4
    assert "Stderr" not in r.out and "err" not in r.out.replace("[SUCCESS]", "")


def test_command_words_are_joined_like_pssh(lab):
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), "-i", "echo", "one", "two")
    assert r.rc == 0, r.err
    assert r.out.splitlines()[1] == "one two"


def test_outdir_and_errdir_hold_one_file_per_host(lab, hosts_arg, tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    r = cli("run", *hosts_arg, *lab_flags(lab), "-o", str(out), "-e", str(err),
            'echo "o $SSH_CONNECTION" | cut -d" " -f1,4; echo e >&2')
    assert r.rc == 0, r.err
    assert sorted(os.listdir(out)) == sorted(lab.hosts) == sorted(os.listdir(err))
    for host in lab.hosts:
        assert (out / host).read_text() == f"o {host.split(':')[0]}\n"
        assert (err / host).read_text() == "e\n"
    assert len(r.statuses()) == 4 and len(r.out.splitlines()) == 4  # output went to the files only


def test_print_prefixes_every_whole_line_with_the_host(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "-P", "printf 'a'; sleep 0.2; printf 'b\\nc\\n'")
    assert r.rc == 0, r.err
    printed = [line for line in r.out.splitlines() if not STATUS.match(line)]
    assert sorted(printed) == sorted([f"{h}: ab" for h in lab.hosts] + [f"{h}: c" for h in lab.hosts])
    assert len(r.statuses()) == 4


def test_send_input_feeds_stdin_to_every_host(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "-I", "-i", "tr a-z A-Z", input=b"hello\n")
    assert r.rc == 0, r.err
    assert r.out.count("\nHELLO\n") == 4


def test_extra_args_and_options_reach_ssh(lab):
    host = ["-H", lab.hosts[0], *lab_flags(lab), "-i"]
    r = cli("run", *host, "-x", "-o 'SetEnv=PARALLAX_T=xval'", 'echo "$PARALLAX_T"')  # split like a shell
    assert r.rc == 0, r.out + r.err
    assert r.out.splitlines()[1] == "xval"
    r = cli("run", *host, "-X", "-oSetEnv=PARALLAX_T=y", 'echo "$PARALLAX_T"')
    assert r.out.splitlines()[1] == "y", r.err
    r = cli("run", *host, "-O", "SetEnv=PARALLAX_T=o", 'echo "$PARALLAX_T"')
    assert r.out.splitlines()[1] == "o", r.err


def test_user_flag_wins_over_parallax_user(lab):
    flags = lab_flags(lab)
    no_user = flags[2:]  # without -l
    env = clean_env(PARALLAX_USER="nosuchuser")
    r = cli("run", "-H", lab.hosts[0], *no_user, "-i", "id -un", env=env)
    assert r.rc == 4, r.out  # PARALLAX_USER applies: that user cannot log in
    r = cli("run", "-H", lab.hosts[0], *flags, "-i", "id -un", env=env)
    assert r.rc == 0, r.out + r.err
    assert r.out.splitlines()[1] == lab.user
    r = cli("run", "-H", lab.hosts[0], *no_user, "-i", "id -un", env=clean_env(PARALLAX_USER=lab.user))
    assert r.rc == 0 and r.out.splitlines()[1] == lab.user


def test_parallax_options_env_applies(lab):
    opts = " ".join(lab_flags(lab)[3::2])
    r = cli("run", "-H", lab.hosts[0], "-l", lab.user, "true", env=clean_env(PARALLAX_OPTIONS=opts))
    assert r.rc == 0, r.out + r.err


def test_par_limits_hosts_at_once(lab, hosts_arg):
    cmd = "date +%s.%N; sleep 0.2; date +%s.%N"
    r = cli("run", *hosts_arg, *lab_flags(lab), "-p", "1", "--inline-stdout", cmd)
    assert r.rc == 0, r.err
    times = [float(x) for x in r.out.splitlines() if not STATUS.match(x)]
    spans = sorted(zip(times[::2], times[1::2], strict=True))
    assert len(spans) == 4
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))  # never two at once
    r = cli("run", *hosts_arg, *lab_flags(lab), "-p", "4", "--inline-stdout", cmd)
    times = [float(x) for x in r.out.splitlines() if not STATUS.match(x)]
    spans = sorted(zip(times[::2], times[1::2], strict=True))
    assert any(a_end > b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))  # -p 4: overlap


def test_timeout_is_exit_3_and_zero_means_none(lab):
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), "-t", "1", "sleep 20")
    assert r.rc == 3, r.out
    (m,) = r.statuses()
    assert m.group(3) == "FAILURE" and m.group(5).startswith("Timed out")
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), "-t", "0", "sleep 0.2")
    assert r.rc == 0, r.out


def test_deadline_is_exit_3(lab, hosts_arg):
    r = cli("run", *hosts_arg, *lab_flags(lab), "--deadline", "1", "sleep 20")
    assert r.rc == 3, r.out
    assert [m.group(5) for m in r.statuses()] == ["Overall deadline of 1 s reached"] * 4


def test_ssh_failures_are_exit_4(lab):
    dead = f"{lab.addresses[0]}:1"
    r = cli("run", "-H", f"{lab.hosts[0]} {dead}", *lab_flags(lab), "true")
    assert r.rc == 4, r.out
    by_host = {m.group(4): m for m in r.statuses()}
    assert by_host[lab.hosts[0]].group(3) == "SUCCESS"
    assert by_host[dead].group(3) == "FAILURE" and "Connection refused" in by_host[dead].group(5)
    wrong_key = [f if not f.startswith("IdentityFile=") else f"IdentityFile={lab.wrong_key}" for f in lab_flags(lab)]
    r = cli("run", "-H", lab.hosts[0], *wrong_key, "true")
    assert r.rc == 4, r.out
    assert "Authentication failed" in r.out or "Permission denied" in r.out


def test_lowest_of_3_4_5_wins(lab):
    dead = f"{lab.addresses[0]}:1"
    both = f"{lab.hosts[0]} {dead}"
    assert cli("run", "-H", both, *lab_flags(lab), "exit 7").rc == 4
    assert cli("run", "-H", both, *lab_flags(lab), "-t", "1", "sleep 20").rc == 3
    assert cli("run", "-H", " ".join(lab.hosts[:2]), *lab_flags(lab), "exit 0").rc == 0


def test_retries_and_verbose(lab):
    dead = f"{lab.addresses[0]}:1"
    r = cli("run", "-H", dead, *lab_flags(lab), "--retries", "1", "-v", "true")
    assert r.rc == 4
    assert "retrying" in r.err and "Connection refused" in r.err
    r = cli("run", "-H", dead, *lab_flags(lab), "--retries", "1", "true")
    assert r.err == ""  # without -v the library stays quiet; the status line says it all


def test_connect_timeout_on_a_server_that_never_speaks(lab):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        r = cli("run", "-H", host, *lab_flags(lab), "--connect-timeout", "1", "true")
        assert time.monotonic() - started < 20  # not the 60 s per-host default
    assert r.rc == 3, r.out
    (m,) = r.statuses()
    assert "timed out" in m.group(5)


@pytest.mark.parametrize("backend", ["paramiko", "asyncssh"])
def test_backend_flag(lab, hosts_arg, backend):
    r = cli("run", *hosts_arg, *lab_flags(lab), "--backend", backend, "-i", "echo via")
    assert r.rc == 0, r.out + r.err
    assert r.out.count("\nvia\n") == 4


def test_json_lines_one_object_per_host(lab):
    dead = f"{lab.addresses[0]}:1"
    r = cli("run", "-H", f"{' '.join(lab.hosts[:2])} {dead}", *lab_flags(lab), "--json",
            "printf 'caf\\303\\251 \\377' >&2; echo ok")
    assert r.rc == 4
    records = {rec["host"]: rec for rec in map(json.loads, r.out.splitlines())}
    assert set(records) == {*lab.hosts[:2], dead}
    for host in lab.hosts[:2]:
        rec = records[host]
        assert rec["rc"] == 0 and rec["error"] is None and rec["message"] is None
        assert rec["stdout"] == "ok\n"
        assert rec["stderr"] is None  # not UTF-8: base64 instead
        assert base64.b64decode(rec["stderr_base64"]) == "café ".encode() + b"\xff"
        assert isinstance(rec["duration"], float) and rec["duration"] > 0
    bad = records[dead]
    assert bad["error"] == "ConnectionFailed" and "Connection refused" in bad["message"] and bad["rc"] is None
    assert "[SUCCESS]" not in r.out and r.err == ""


def test_gather_folds_identical_output(lab):
    dead = f"{lab.addresses[0]}:1"
    r = cli("run", "-H", f"{' '.join(lab.hosts)} {dead}", *lab_flags(lab), "-b", "echo same; echo warn >&2")
    assert r.rc == 4
    first = lab.hosts[0].rsplit(".", 1)[0]
    rule = "-" * 15
    expected_head = f"{rule}\n{first}.[2-5]:{lab.port} (4)\n{rule}\nsame\nStderr: warn\n{rule}\n{dead}\n{rule}\n"
    assert r.out.startswith(expected_head), r.out
    assert r.out.rstrip("\n").splitlines()[-1].startswith("[FAILURE] Connection to")
    assert not r.statuses()


def test_hosts_files_are_repeatable_and_commented(lab, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text(f"# web\n{lab.hosts[0]}\n{lab.hosts[1]}  # second\n\n")
    b.write_text(f"{lab.addresses[2]}:{lab.port} {lab.user}\n")
    r = cli("run", "-h", str(a), "-h", str(b), *lab_flags(lab)[2:], "-l", lab.user, "true")
    assert r.rc == 0, r.out + r.err
    assert sorted(m.group(4) for m in r.statuses()) == sorted(lab.hosts[:3])


def test_nodeset_and_exclude(lab):
    base = lab.addresses[0].rsplit(".", 1)[0]
    last = [int(a.rsplit(".", 1)[1]) for a in lab.addresses]
    nodeset = f"{base}.[{last[0]}-{last[-1]}]:{lab.port}"
    r = cli("run", "-w", nodeset, "--exclude", lab.hosts[1], *lab_flags(lab), "true")
    assert r.rc == 0, r.out + r.err
    assert sorted(m.group(4) for m in r.statuses()) == sorted(h for h in lab.hosts if h != lab.hosts[1])
    r = cli("run", "-w", nodeset, "--exclude", nodeset, *lab_flags(lab), "true")
    assert r.rc == 2 and "no host" in r.err


def test_parallax_hosts_env_when_no_host_flag(lab, tmp_path):
    f = tmp_path / "hosts"
    f.write_text("\n".join(lab.hosts) + "\n")
    r = cli("run", *lab_flags(lab), "true", env=clean_env(PARALLAX_HOSTS=str(f)))
    assert r.rc == 0 and len(r.statuses()) == 4, r.out + r.err
    r = cli("run", *lab_flags(lab), "true")  # no hosts at all
    assert r.rc == 2 and "PARALLAX_HOSTS" in r.err and len(r.err.splitlines()) == 1


def test_local_error_is_exit_1(lab, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = cli("run", "-H", lab.hosts[0], *lab_flags(lab), "-o", str(blocker / "out"), "true")
    assert r.rc == 1, r.out + r.err
    assert len(r.err.splitlines()) == 1 and str(blocker) in r.err and "Traceback" not in r.err


@pytest.mark.parametrize("args, culprit", [
    (["--no-such-flag", "true"], "--no-such-flag"),
    (["-w", "h[1-", "true"], "h[1-"),
    (["-h", "/nonexistent/hosts", "true"], "/nonexistent/hosts"),
    (["-p", "0", "true"], "-p"),
    (["-t", "soon", "true"], "soon"),
    ([], "no command"),
    (["-H", "-oProxyCommand=x", "true"], "-oProxyCommand=x"),
], ids=["flag", "nodeset", "hostsfile", "par0", "timeout", "nocommand", "hostoption"])
def test_usage_errors_are_one_line_and_exit_2(lab, args, culprit):
    extra = [] if any(a in args for a in ("-H", "-w", "-h")) else ["-H", lab.hosts[0]]
    r = cli("run", *extra, *args)
    assert r.rc == 2, (r.out, r.err)
    assert len(r.err.splitlines()) == 1, r.err
    assert culprit in r.err and "Traceback" not in r.err
    assert r.out == ""


def test_bad_parallax_par_names_the_variable(lab):
    r = cli("run", "-H", lab.hosts[0], "true", env=clean_env(PARALLAX_PAR="0"))
    assert r.rc == 2 and "PARALLAX_PAR" in r.err and len(r.err.splitlines()) == 1


def test_python_m_parallax_is_the_same_program(lab):
    args = ["run", "-H", lab.hosts[0], *lab_flags(lab), "--json", "echo same"]
    via_module = subprocess.run([sys.executable, "-m", "parallax", *args], check=False, capture_output=True, text=True,
                                env=clean_env(), timeout=60)
    via_script = cli(*args)
    assert via_module.returncode == via_script.rc == 0
    outputs = (via_module.stdout, via_script.out)
    strip = [{k: v for k, v in json.loads(line).items() if k != "duration"} for line in outputs]
    assert strip[0] == strip[1]
    bad = subprocess.run([sys.executable, "-m", "parallax", "run", "--bogus"], check=False,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == cli("run", "--bogus").err


def test_parallax_outdir_and_backend_env_apply_and_flags_win(lab, tmp_path):
    host = ["-H", lab.hosts[0], *lab_flags(lab)]
    env = clean_env(PARALLAX_OUTDIR=str(tmp_path / "env"))
    assert cli("run", *host, "echo e", env=env).rc == 0
    assert (tmp_path / "env" / lab.hosts[0]).read_text() == "e\n"
    assert cli("run", *host, "-o", str(tmp_path / "flag"), "echo f", env=env).rc == 0
    assert (tmp_path / "flag" / lab.hosts[0]).read_text() == "f\n"
    assert (tmp_path / "env" / lab.hosts[0]).read_text() == "e\n"  # the flag won
    env = clean_env(PARALLAX_BACKEND="paramiko")
    r = cli("run", *host, "-X", "-4", "true", env=env)  # raw ssh arguments: openssh only
    assert r.rc == 2 and "paramiko" in r.err, r.out + r.err
    assert cli("run", *host, "-X", "-4", "--backend", "openssh", "true", env=env).rc == 0


def test_demo_is_a_subcommand_of_the_installed_command():
    r = cli("demo", "--help")
    assert r.rc == 0 and "--host-kind" in r.out
