"""The ``vipd`` command: run, check-config, status, failback, drain, undrain."""
from __future__ import annotations

import asyncio
import json
import logging
import sys

import click

from vipd import config as configmod
from vipd import control

DEFAULT_CONFIG = "/etc/vipd/vipd.toml"
DEFAULT_SOCKET = "/run/vipd/vipd.sock"


@click.group()
@click.version_option(package_name="vipd", prog_name="vipd")
def main() -> None:
    """vipd: VRRP virtual-IP failover agent."""


def _load_or_exit(path: str, host_checks: bool = True) -> configmod.Config:
    from vipd.scriptsec import load_checked
    try:
        return load_checked(path) if host_checks else configmod.load(path)
    except configmod.ConfigError as e:
        click.echo(f"vipd: {path}: {len(e.issues)} error(s):", err=True)
        for issue in e.issues:
            click.echo(f"  {issue}", err=True)
        sys.exit(2)


@main.command()
@click.option("-c", "--config", "path", default=DEFAULT_CONFIG, show_default=True)
@click.option("--log-level", default=None, help="debug|info|warning|error (overrides config)")
def run(path: str, log_level: str | None) -> None:
    """Run the daemon in the foreground (SIGTERM stops, SIGHUP reloads)."""
    cfg = _load_or_exit(path)
    level = (log_level or cfg.global_.log_level).upper()
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s vipd %(levelname)s %(message)s")
    from vipd.daemon import main as daemon_main    # keeps check-config/status light
    try:
        sys.exit(asyncio.run(daemon_main(cfg)))
    except (OSError, RuntimeError) as e:
        click.echo(f"vipd: cannot run: {e}", err=True)
        sys.exit(1)


@main.command("check-config")
@click.option("-c", "--config", "path", default=DEFAULT_CONFIG, show_default=True)
@click.option("--no-host-checks", is_flag=True,
              help="check the file only, not this host (whether check and hook programs exist "
                   "and are safe): for configs written here to be deployed elsewhere")
def check_config(path: str, no_host_checks: bool) -> None:
    """Validate a config file; list every error with file, key and reason."""
    cfg = _load_or_exit(path, host_checks=not no_host_checks)
    click.echo(f"{path}: OK ({len(cfg.instances)} instance(s), {len(cfg.checks)} check(s))")


def _socket_option(f):
    return click.option("--socket", "sock", default=None,
                        help=f"control socket (default: from -c config, else {DEFAULT_SOCKET})")(
        click.option("-c", "--config", "path", default=None, help="config to take the socket from")(f))


def _call(sock: str | None, path: str | None, req: dict) -> dict:
    if sock is None:
        sock = DEFAULT_SOCKET
        if path:
            sock = _load_or_exit(path).global_.socket
    try:
        reply = control.request(sock, req)
    except (OSError, ValueError) as e:
        click.echo(f"vipd: cannot reach the daemon at {sock}: {e}", err=True)
        sys.exit(3)
    if not reply.get("ok"):
        click.echo(f"vipd: {reply.get('error')}", err=True)
        sys.exit(1)
    return reply


@main.command()
@_socket_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(sock, path, as_json: bool) -> None:
    """Show every instance: state, priority, master, VIPs, failback, checks."""
    st = _call(sock, path, {"cmd": "status"})["status"]
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    from vipd.statusfmt import table
    click.echo(table(st))


@main.command()
@_socket_option
@click.argument("instance")
@click.option("--force", is_flag=True, help="fail back even if a failback gate is failing")
def failback(sock, path, instance: str, force: bool) -> None:
    """Approve a pending (semi-auto) failback of INSTANCE on this host."""
    r = _call(sock, path, {"cmd": "failback", "instance": instance, "force": force})
    click.echo(f"{instance}: failback approved (state {r.get('state')})")


@main.command()
@_socket_option
@click.argument("instance")
def drain(sock, path, instance: str) -> None:
    """Give up the master role of INSTANCE and stay BACKUP until undrain."""
    r = _call(sock, path, {"cmd": "drain", "instance": instance})
    click.echo(f"{instance}: drained (state {r.get('state')})")


@main.command()
@_socket_option
@click.argument("instance")
def undrain(sock, path, instance: str) -> None:
    """Return INSTANCE to normal behaviour under its failback policy."""
    r = _call(sock, path, {"cmd": "undrain", "instance": instance})
    click.echo(f"{instance}: undrained (state {r.get('state')})")


@main.command()
@_socket_option
def reload(sock, path) -> None:
    """Ask the daemon to reload its config (same as SIGHUP)."""
    r = _call(sock, path, {"cmd": "reload"})
    click.echo(json.dumps({k: v for k, v in r.items() if k != "ok"}))


@main.command("import-keepalived")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-i", "--config-id", "config_id", default=None,
              help="for @ID lines, as keepalived -i (default: the host name's first label)")
@click.option("-o", "--output", "out", default=None, type=click.Path(dir_okay=False),
              help="write the vipd config here instead of stdout")
def import_keepalived(file: str, config_id: str | None, out: str | None) -> None:
    """Convert a keepalived.conf to a vipd config; the report (every keyword mapped or not
    carried over, with file:line and why) goes to stderr."""
    from vipd.kaimport import convert
    text, result, errors = convert(file, config_id)
    for e in errors:
        click.echo(f"error: {e}", err=True)
    click.echo(result.report(), err=True)
    if errors:
        sys.exit(2)
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@main.command()
@_socket_option
def events(sock, path) -> None:
    """Follow transitions, check results and hook runs: one JSON object a line, until ^C."""
    if sock is None:
        sock = _load_or_exit(path).global_.socket if path else DEFAULT_SOCKET
    try:
        for event in control.follow(sock, {"cmd": "events"}):
            click.echo(json.dumps(event))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as e:
        click.echo(f"vipd: cannot follow events at {sock}: {e}", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
