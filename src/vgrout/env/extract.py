"""Pull the program out of a completion: fenced ```python (or bare ```) blocks, joined."""

from __future__ import annotations

def extract_code(completion: str) -> str | None:
    """All fenced code blocks, stripped and joined by blank lines; None when there are none.

    A block opens with a line starting ```` ```python ```` or a bare ```` ``` ```` (any case) and
    closes at the next line that ends with ```` ``` ````. A final block that is never closed still
    counts (generation often stops mid-block). Blocks tagged with another language (```py,
    ```text) are skipped, as in the reference.
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be str, got {type(completion).__name__}")
    blocks: list[str] = []
    current: list[str] | None = None  # lines of the open block; None outside a block
    keep = False
    for line in completion.split("\n"):
        stripped = line.strip()
        if current is None:
            if stripped.startswith("```"):
                keep = stripped[3:].strip().lower() in ("", "python")
                current = []
            continue
        if stripped.endswith("```"):
            head = stripped[:-3]
            if head:
                current.append(line[: line.rfind("```")])
            if keep:
                blocks.append("\n".join(current))
            current = None
            continue
        current.append(line)
    if current is not None and keep:
        blocks.append("\n".join(current))
    blocks = [b.strip() for b in blocks if b.strip()]
    return "\n\n".join(blocks) if blocks else None
