"""Ready-to-paste client set-ups, filled with this server's URL (facts from the README table).

``KEY`` stands where the key goes; the page swaps in the chosen key's prefix as a reminder of
which key to paste (the secret itself is never on the page again).
"""

from __future__ import annotations

from dataclasses import dataclass

KEY = "YOUR_CCSITE_KEY"
OPENAI_MODEL = "deepseek/deepseek-v4-flash"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
SMALL_MODEL = "claude-haiku-4-5-20251001"


@dataclass(frozen=True)
class Snippet:
    slug: str
    title: str
    where: str
    text: str


def snippets(base_url: str) -> list[Snippet]:
    """``base_url``: this server's root, no trailing slash (OpenAI clients add /v1)."""
    v1 = f"{base_url}/v1"
    return [
        Snippet(
            "claude-code",
            "Claude Code",
            "in your shell (or the env block of ~/.claude/settings.json)",
            f"export ANTHROPIC_BASE_URL={base_url}\n"
            f"export ANTHROPIC_API_KEY={KEY}\n"
            f"export ANTHROPIC_MODEL={ANTHROPIC_MODEL}\n"
            f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={SMALL_MODEL}\n"
            "claude",
        ),
        Snippet(
            "codex",
            "Codex",
            "~/.codex/config.toml, then export CCSITE_API_KEY=YOUR_CCSITE_KEY",
            'model = "gpt-5.4"\n'
            'model_provider = "ccsite"\n\n'
            "[model_providers.ccsite]\n"
            'name = "ccsite"\n'
            f'base_url = "{v1}"\n'
            'env_key = "CCSITE_API_KEY"\n'
            'wire_api = "responses"',
        ),
        Snippet(
            "openai-sdk",
            "openai SDK (Python)",
            "pip install openai",
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{v1}", api_key="{KEY}")\n'
            "reply = client.chat.completions.create(\n"
            f'    model="{OPENAI_MODEL}", messages=[{{"role": "user", "content": "Hello"}}]\n'
            ")\n"
            "print(reply.choices[0].message.content)",
        ),
        Snippet(
            "anthropic-sdk",
            "anthropic SDK (Python)",
            "pip install anthropic",
            "from anthropic import Anthropic\n\n"
            f'client = Anthropic(base_url="{base_url}", api_key="{KEY}")\n'
            "reply = client.messages.create(\n"
            f'    model="{ANTHROPIC_MODEL}",\n'
            "    max_tokens=1024,\n"
            '    messages=[{"role": "user", "content": "Hello"}],\n'
            ")\n"
            "print(reply.content[0].text)",
        ),
        Snippet(
            "aider",
            "aider",
            "in your shell",
            f"export OPENAI_API_BASE={v1}\nexport OPENAI_API_KEY={KEY}\naider --model openai/{OPENAI_MODEL}",
        ),
        Snippet(
            "opencode",
            "opencode",
            "opencode.json (project) or ~/.config/opencode/opencode.json",
            "{\n"
            '  "$schema": "https://opencode.ai/config.json",\n'
            '  "provider": {\n'
            '    "ccsite": {\n'
            '      "npm": "@ai-sdk/openai-compatible",\n'
            '      "name": "ccsite",\n'
            f'      "options": {{"baseURL": "{v1}", "apiKey": "{KEY}"}},\n'
            f'      "models": {{"{OPENAI_MODEL}": {{}}}}\n'
            "    }\n"
            "  }\n"
            "}",
        ),
        Snippet(
            "llm",
            "llm",
            "extra-openai-models.yaml in llm's config folder (llm logs path shows it)",
            "- model_id: ccsite\n"
            f"  model_name: {OPENAI_MODEL}\n"
            f"  api_base: {v1}\n"
            "  api_key_name: ccsite\n"
            "  supports_tools: true\n"
            "# then: llm keys set ccsite   (paste YOUR_CCSITE_KEY)\n"
            '#       llm -m ccsite "Hello"',
        ),
        Snippet(
            "curl",
            "curl",
            "any shell",
            f"curl {v1}/chat/completions \\\n"
            f'  -H "Authorization: Bearer {KEY}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f'  -d \'{{"model": "{OPENAI_MODEL}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'\n'
            f'curl {v1}/me -H "Authorization: Bearer {KEY}"   # your limits and usage',
        ),
    ]
