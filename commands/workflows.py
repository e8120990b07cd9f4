"""``relink workflows list`` / ``show`` / ``graph``: the registered workflow definitions and their
diagrams (engine.catalog); none of them needs settings or a database."""

from typing import Annotated, Literal

import typer

from commands.app import DEFAULT_WORKFLOW, console, emit_json, group, guard, line, say

workflows_app = group("Workflow definitions and their diagrams.")

WorkflowName = Annotated[str, typer.Argument(help="Workflow name.")]
# the diagram languages engine.catalog.diagram draws
DiagramFormat = Literal["mermaid", "dot"]


@workflows_app.command("list")
def list_workflows(ctx: typer.Context) -> None:
    """The registered workflow definitions.

    Example: relink workflows list
    """
    with guard(ctx) as options:
        from engine.catalog import describe_all

        # the default first (what `start` corrects without --workflow), then by name
        docs = [{**doc, "default": doc["name"] == DEFAULT_WORKFLOW} for doc in describe_all()]
        docs.sort(key=lambda doc: (not doc["default"], doc["name"]))
        if options.json:
            emit_json({"workflows": docs})
            return
        for doc in docs:
            default = ", the default" if doc["default"] else ""
            say(line(f"{doc['name']} (version {doc['version']}{default}, corrects a"
                     f" {doc['subject_type']}): {doc['description']}"))


@workflows_app.command("show")
def show_workflow(ctx: typer.Context, name: WorkflowName) -> None:
    """States, steps and the permission policy of a workflow.

    Example: relink workflows show commitment
    """
    with guard(ctx) as options:
        from engine.catalog import describe

        doc = describe(name)
        if options.json:
            emit_json(doc)
            return
        from commands.render import definition

        definition(console(options), doc)


@workflows_app.command("graph")
def graph(
    ctx: typer.Context,
    name: WorkflowName,
    fmt: Annotated[DiagramFormat, typer.Option(
        "--format", help="Mermaid, or graphviz dot.")] = "mermaid",
) -> None:
    """The workflow's diagram as mermaid or graphviz dot source.

    Example: relink workflows graph subcontractor-invoice --format dot
    """
    with guard(ctx) as options:
        from engine.catalog import diagram

        text = diagram(name, fmt)
        if options.json:
            emit_json({"name": name, "format": fmt, "source": text})
        else:
            say(text)
