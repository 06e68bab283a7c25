"""Build openai_compatible/synthetic/stream_parallel_tool_calls_interleaved.sse from the real
openai/stream_tool_call.sse (both in synapsekit/testing/simulators/captures): same envelope
(id, created, model, system_fingerprint, field order), its call (index 0) plus a second call
(index 1), the two calls' fragments interleaved one by one, then the finish chunk and the
usage chunk."""
import json
import pathlib
from typing import Any

root = pathlib.Path(__file__).resolve().parents[2]  # the captures folder
captured = (root / "openai/stream_tool_call.sse").read_text().split("\n\n")
events = [json.loads(e[6:]) for e in captured if e.startswith("data: {")]
first, frags, finish, usage = events[0], events[1:-2], events[-2], events[-1]


def with_delta(
    template: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(template))
    event["choices"][0]["delta"] = delta
    event["choices"][0]["finish_reason"] = finish_reason
    return event


call0 = first["choices"][0]["delta"]["tool_calls"][0]
pieces0 = [f["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for f in frags]
assert "".join(pieces0) == '{"city":"New York City"}'
call1 = {"index": 1, "id": "call_Zb3hQwX0pYtN8e2LmR5vKc1s", "type": "function",
         "function": {"name": "get_time", "arguments": ""}}
pieces1 = ['{"', "time", "zone", '":"', "America", "/New", "_York", '"}']
out = [first]  # role + call 0 header, as captured
out.append(with_delta(frags[0], {"tool_calls": [call1]}))
for k in range(max(len(pieces0), len(pieces1))):
    for index, pieces in ((0, pieces0), (1, pieces1)):
        if k < len(pieces):
            out.append(with_delta(frags[0], {"tool_calls": [
                {"index": index, "function": {"arguments": pieces[k]}}]}))
out.append(finish)
usage = json.loads(json.dumps(usage))
usage["usage"] = {"prompt_tokens": 66, "completion_tokens": 41, "total_tokens": 107,
                  "completion_tokens_details": {"reasoning_tokens": 0}}
out.append(usage)
text = "".join("data: " + json.dumps(e, separators=(",", ":")) + "\n\n" for e in out)
text += "data: [DONE]\n\n"
(root / "openai_compatible/synthetic/stream_parallel_tool_calls_interleaved.sse").write_text(text)
print(len(out), "events")
