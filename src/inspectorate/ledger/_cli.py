"""``inspectorate ledger``: keys, enrolment, the log, the witness, the audit (thin commands)."""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption

app = typer.Typer(no_args_is_help=True, help="Signed evidence: host keys, transparency log, witness.")


class Role(str, enum.Enum):
    host = "host"
    log = "log"
    witness = "witness"


@app.command("keygen")
def keygen(
    key_id: str = typer.Option(..., "--id", help="Host, log or witness id."),
    role: Role = typer.Option(Role.host, "--role"),
    out: Path = typer.Option(..., "--out", help="Private key file (written 0600)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key file."),
) -> None:
    """Make an Ed25519 key; prints its public key (hex) for enrolment."""
    from inspectorate.ledger._keys import generate_key, save_key

    key = generate_key(key_id, role.value)
    save_key(key, out, force=force)
    typer.echo(key.public_hex)


@app.command("enrol")
def enrol_command(
    keyring: Path = typer.Option(..., "--keyring", help="The verifier's keyring (created if absent)."),
    key: Path = typer.Option(..., "--key", help="Key file whose public half is enrolled under its id."),
) -> None:
    """Enrol a key's public half under its id and role (refuses a key already enrolled)."""
    from inspectorate.ledger._keys import enrol_key_file

    entry = enrol_key_file(keyring, key)
    typer.echo(f"enrolled {entry.role} {entry.id} {entry.public_key}")


@app.command("init")
def init_command(
    log: Path = typer.Argument(..., help="New log directory."),
    log_id: str = typer.Option(..., "--id", help="The log's id (its key is enrolled under it)."),
) -> None:
    """Create an empty transparency log."""
    from inspectorate.ledger._log import init_log

    init_log(log, log_id)
    typer.echo(f"log {log_id} at {log}")


@app.command("cosign")
def cosign(
    log: Path = typer.Argument(..., help="Log directory."),
    key: Path = typer.Option(..., "--key", help="The witness's key."),
    keyring: Path = typer.Option(..., "--keyring"),
    state: Path = typer.Option(..., "--state", help="The witness's memory of what it cosigned."),
) -> None:
    """Cosign the log's latest tree head if it extends the last one cosigned; exit 1 on refusal."""
    from inspectorate.ledger._witness import witness_log

    answer = witness_log(log, key, keyring, state)
    if answer.cosig is None:
        typer.echo(f"refused: {answer.refusal}")
        raise typer.Exit(1)
    typer.echo(f"cosigned size {answer.cosig['size']} root {answer.cosig['root']}")


@app.command("verify-log")
def verify_log(
    log: Path = typer.Argument(..., help="Log directory."),
    keyring: Path = typer.Option(..., "--keyring"),
    stream: Path | None = typer.Option(
        None, "--stream", help="A chained JSONL file (sensor.jsonl) to check."
    ),
    challenge: str | None = typer.Option(None, "--challenge", help="The nonce the verifier issued."),
    state: Path | None = typer.Option(None, "--state", help="The verifier's memory of each log."),
    peer: list[Path] = typer.Option([], "--peer", help="A signed head another verifier holds (repeatable)."),
    format: FormatOption = Format.text,
) -> None:
    """Audit the log (and a stream against it); exit 0 consistent, 1 not, 2 bad input."""
    from inspectorate.ledger._verify import verify_signed

    report = verify_signed(stream, log, keyring, challenge=challenge, state=state, peers=peer)
    if format is Format.json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.reasons() + report.notes:
            typer.echo(line)
        typer.echo(f"{report.decision}: log {report.log}, {report.heads} signed head(s) for the stream")
    raise typer.Exit(0 if report.decision == "consistent" else 1)


@app.command("sign-stream")
def sign_stream(
    stream: Path = typer.Argument(..., help="A hash-chained JSONL file."),
    key: Path = typer.Option(..., "--key", help="Host key."),
    log: Path = typer.Option(..., "--log", help="Log directory."),
    log_key: Path = typer.Option(..., "--log-key", help="The log operator's key."),
    final: bool = typer.Option(True, "--final/--not-final", help="Whether the stream is closed."),
) -> None:
    """Sign the stream's current head into the log (for writers without the sensor's hook)."""
    from inspectorate.ledger._heads import open_signer, sign_file

    leaf = sign_file(stream, open_signer(key, log, log_key), final=final)
    typer.echo(f"signed record {leaf['count']} head {leaf['head']}")
