"""Drive ax-prover's own LLM client (ax_prover.utils.llm.LLMClient) against atp-model-fake.

ax-prover's CLI needs a Lean toolchain and the Lean REPL before its first model call, so the
real-CLI check exercises the layer that talks to the model: the proposer's call
(`agentic_loop(..., output_schema=ProverResult)`) and the reviewer's call
(`ainvoke(..., output_schema=ReviewDecision)`), built from an open-atp style `axprover.yaml`
model entry. Prints one JSON line per call; exits non-zero if a call fails or its structured
output does not parse.

usage: python axprover_llm.py PROVIDER_MODEL   (e.g. anthropic:claude-opus-4-8, openai:gpt-5.5)
env:   ANTHROPIC_BASE_URL / OPENAI_BASE_URL pointing at the fake, and the provider's key.
"""

import asyncio
import json
import sys

from langchain_core.messages import HumanMessage, SystemMessage

from ax_prover.config import LLMConfig
from ax_prover.models.proving import ProverResult, ReviewDecision
from ax_prover.utils.llm import LLMClient, agentic_loop


def provider_config(model: str) -> dict:
    # The provider_config open-atp writes for each prefix.
    prefix = model.split(":")[0]
    if prefix == "anthropic":
        return {"temperature": 1.0, "max_tokens": None, "effort": "high", "thinking": {"type": "adaptive"}}
    return {"temperature": None, "max_tokens": None, "reasoning": {"effort": "high"}}


async def main(model: str) -> int:
    config = LLMConfig(model=model, provider_config=provider_config(model),
                       retry_config={"stop_after_attempt": 3})
    client = LLMClient(config)
    messages = [SystemMessage(content="You are a Lean prover."),
                HumanMessage(content="Prove theorem t : 1 + 1 = 2 := by sorry")]
    response = await agentic_loop(client, messages, tools=[], output_schema=ProverResult)
    proposal = ProverResult.model_validate_json(response.text)
    print(json.dumps({"call": "proposer", "updated_theorem": proposal.updated_theorem,
                      "usage": response.usage_metadata}))
    review = await client.ainvoke(messages, output_schema=ReviewDecision)
    decision = ReviewDecision.model_validate_json(review.text)
    print(json.dumps({"call": "reviewer", "decision": decision.model_dump(),
                      "usage": review.usage_metadata}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
