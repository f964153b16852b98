"""Typer app tree. Command modules import these and register commands on them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="klartext",
    help="Klartext — grounded customer-support chatbot: reindex knowledge, search, ask, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Knowledge base information.", no_args_is_help=True)
nlu_app = typer.Typer(
    help="Train and try the NLU (intents, entities, language).", no_args_is_help=True
)
eval_app = typer.Typer(help="Evaluate retrieval, intents and answers.", no_args_is_help=True)
db_app = typer.Typer(help="Database: migrations, retention.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of the CRM REST API.", no_args_is_help=True)

app.add_typer(kb_app, name="kb")
app.add_typer(nlu_app, name="nlu")
app.add_typer(eval_app, name="eval")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
