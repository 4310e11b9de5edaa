"""Checks on the programs a config names (health checks, notify hooks) before anything runs.

vipd runs them as root (or as ``global.script_user``); a program, or any directory above it,
writable by a non-root user would let that user run code as root, so such a config is refused
(keepalived's ``enable_script_security`` made the default). Missing or non-executable programs
are config errors too, reported with the key that names them.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import stat

from vipd.config import Config, ConfigError, ConfigIssue, load


def program_issues(cfg: Config, as_root: bool | None = None) -> list[ConfigIssue]:
    if as_root is None:
        as_root = os.geteuid() == 0
    issues: list[ConfigIssue] = []
    f = cfg.path
    user = cfg.global_.script_user
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            issues.append(ConfigIssue(f, "global.script_user", f"no such user {user!r}"))
    programs = [(f"checks.{name}.command[0]", c.command[0])
                for name, c in cfg.checks.items() if c.command]
    for name, c in cfg.checks.items():
        issues += [ConfigIssue(f, f"checks.{name}.{key}", reason)
                   for key, reason in password_issues(c.builtin, as_root)]
        if c.kind in ("redis", "sentinels") and importlib.util.find_spec("redis") is None:
            issues.append(ConfigIssue(f, f"checks.{name}.{c.kind}", "needs redis-py, which is "
                                      "not installed: pip install 'vipd[redis]'"))
    for i, inst in enumerate(cfg.instances):
        for state in ("master", "backup", "fault", "stop"):
            argv = getattr(inst.notify, state)
            if argv:
                programs.append((f"instance[{i}].notify.{state}[0]", argv[0]))
    for key, path in programs:
        reason = _problem(path, as_root)
        if reason:
            issues.append(ConfigIssue(f, key, reason))
    return issues


def password_issues(builtin, as_root: bool) -> list[tuple[str, str]]:
    """(key, reason) for a built-in check's password source that this host cannot provide, or
    that others could read: a password file must be root-only (like /etc/shadow)."""
    env, path = getattr(builtin, "password_env", None), getattr(builtin, "password_file", None)
    if env is not None and env not in os.environ:
        return [("password_env", f"environment variable {env} is not set")]
    if path is None:
        return []
    try:
        st = os.stat(path)
    except OSError as e:
        return [("password_file", f"{path}: {e.strerror}")]
    if not stat.S_ISREG(st.st_mode):
        return [("password_file", f"{path} is not a regular file")]
    if st.st_mode & 0o077 or (as_root and st.st_uid != 0):
        return [("password_file", f"{path} must be owned by root and readable by no one else "
                                  f"(chown root {path}; chmod 600 {path}), "
                                  f"is mode {stat.S_IMODE(st.st_mode):o} owner {_user(st.st_uid)}")]
    return []


def _problem(path: str, as_root: bool) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"program {path} does not exist"
    except OSError as e:
        return f"program {path}: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if not st.st_mode & 0o111:
        return f"program {path} is not executable (chmod +x)"
    if as_root:
        real = os.path.realpath(path)
        node = real
        while True:
            who = _writable_by_non_root(node)
            if who:
                what = "program" if node == real else "directory above program"
                return (f"{what} {node} is writable by {who}: refusing to run {path} as root"
                        " (make it owned by root and not group/world-writable)")
            parent = os.path.dirname(node)
            if parent == node:
                return None
            node = parent
    return None


def _writable_by_non_root(path: str) -> str | None:
    st = os.stat(path)
    sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_uid != 0 and st.st_mode & stat.S_IWUSR:
        return f"user {_user(st.st_uid)} (owner)"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not sticky_dir:
        return f"group gid {st.st_gid}"
    if st.st_mode & stat.S_IWOTH and not sticky_dir:
        return "everyone"
    return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def load_checked(path: str) -> Config:
    """config.load plus the program checks; every problem in one ConfigError."""
    cfg = load(path)
    issues = program_issues(cfg)
    if issues:
        raise ConfigError(issues)
    return cfg
