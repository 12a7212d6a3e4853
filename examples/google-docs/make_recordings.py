# ruff: noqa: E501, T201  (the documented events are single long lines, kept verbatim; a script prints what it wrote)
"""Writes recordings/<endpoint>/<case>.yaml from the example payloads Google's documentation prints.

Every response text below is copied from the page named in its provenance, as printed (only the code block's
indentation removed); nothing is generated. Run from this folder or anywhere:

    python3 examples/google-docs/make_recordings.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RETRIEVED = "2026-11-25"
HARNESS_VERSION = "0.1.0"

V_EX = "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/migrate/openai/examples"
V_START = "https://docs.cloud.google.com/vertex-ai/generative-ai/docs/start/openai"
G_TS = "https://ai.google.dev/gemini-api/docs/thought-signatures#openai"

VERTEX = {
    "name": "vertex-docs",
    "base_url": "https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global/endpoints/openapi",
    "profile": "vertex",
}
GEMINI = {
    "name": "gemini-api-docs",
    "base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
    "profile": "gemini-api",
}

# ---------------------------------------------------------------------------------------------------------
# Requests, as the cases send them (with the model filled in). Keep in step with cases/google-docs.case.yaml.
# ---------------------------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "unit"],
        },
    },
}

FLIGHT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "check_flight",
            "description": "Gets the current status of a flight",
            "parameters": {
                "type": "object",
                "properties": {"flight": {"type": "string", "description": "The flight number to check."}},
                "required": ["flight"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_taxi",
            "description": "Book a taxi",
            "parameters": {
                "type": "object",
                "properties": {"time": {"type": "string", "description": "time to book the taxi"}},
                "required": ["time"],
            },
        },
    },
]

FLIGHT_PROMPT = "Check flight status for AA100 and book a taxi 2 hours before if delayed."

# ---------------------------------------------------------------------------------------------------------
# Responses, verbatim.
# ---------------------------------------------------------------------------------------------------------

# V-EX "Use `stream_function_call_arguments`": the 12 events and [DONE], one `data:` line each.
FC_STREAM_EVENTS = [
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"..."}},"function":{"arguments":"","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":1,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"location\":\"Boston, MA","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"\"","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":",\"unit\":\"celsius","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"\"","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"}","name":"get_current_weather"},"id":"function-call-c855348a-459a-46a4-a8ad-aa0a4e7c3563","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":0,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"{\"location\":\"New Delhi, India","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":1,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"\"","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":1,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":",\"unit\":\"celsius","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":1,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"\"","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":1,"type":"function"}]},"index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":""}""",
    r"""data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"function":{"arguments":"}","name":"get_current_weather"},"id":"function-call-df0d087c-ad74-46f1-ba4a-9353cbf288a8","index":1,"type":"function"}]},"finish_reason":"tool_calls","index":0,"logprobs":null}],"created":1770850461,"id":"nQiNafGyF5rw998PstqooAY","model":"google/gemini-3.1-pro-preview","object":"chat.completion.chunk","system_fingerprint":"","usage":{"completion_tokens":45,"completion_tokens_details":{"reasoning_tokens":504},"extra_properties":{"google":{"traffic_type":"PROVISIONED_THROUGHPUT"}},"prompt_tokens":27,"total_tokens":576}}""",
    "data: [DONE]",
]

# V-EX "Image generation".
IMAGE_GENERATION = """{
  "choices": [
    {
      "finish_reason": "stop",
      "index": 0,
      "logprobs": null,
      "message": {
        "audio": {
          "data": "<BASE64_BYTES>",
          "extra_content": {
            "google": {
              "mime_type": "image/png"
            }
          }
        },
        "content": null,
        "extra_content": {
          "google": {
            "thought_signature": "..."
          }
        },
        "role": "assistant"
      }
    }
  ],
  "created": 1770850692,
  "id": "hAmNaZb8BZOX4_UPlNXoEA",
  "model": "google/gemini-3-pro-image-preview",
  "object": "chat.completion",
  "system_fingerprint": "",
  "usage": {
    "completion_tokens": 1120,
    "completion_tokens_details": {
      "reasoning_tokens": 251
    },
    "extra_properties": {
      "google": {
        "traffic_type": "PROVISIONED_THROUGHPUT"
      }
    },
    "prompt_tokens": 7,
    "total_tokens": 1378
  }
}"""

# V-EX "Multi-modal function responses".
MULTIMODAL_FUNCTION_RESPONSE = """{
  "choices": [
    {
      "finish_reason": "stop",
      "index": 0,
      "logprobs": null,
      "message": {
        "content": "Here is the image of the green shirt you ordered.",
        "role": "assistant"
      }
    }
  ],
  "created": 1770852204,
  "id": "bA-NacCPKoae_9MPsNCn6Qc",
  "model": "google/gemini-3.1-pro-preview",
  "object": "chat.completion",
  "system_fingerprint": "",
  "usage": {
    "completion_tokens": 16,
    "extra_properties": {
      "google": {
        "traffic_type": "ON_DEMAND"
      }
    },
    "prompt_tokens": 1139,
    "total_tokens": 1155
  }
}"""

# V-START "Generate an image" (the copy whose request names google/gemini-2.5-flash-image-preview).
START_IMAGE_GENERATION = """{
  "choices": [{
    "finish_reason": "stop",
    "index": 0,
    "image": {
      "data":"IMAGE_DATA",
      "extra_content": {
        "google": {
          "mime_type":"image/png"
        }
      }
    },
    "content":"Here is an image of a banana: ",
    "role":"assistant"
  }],
  "created":1757099999,
  "id":"sample_response_id",
  "model":"google/gemini-2.5-flash-image-preview",
  "object":"chat.completion",
  "system_fingerprint":"",
  "usage": {
    "completion_tokens":1299,
    "prompt_tokens":7,
    "total_tokens":1306
  }
}"""

# G-TS "Signatures for OpenAI compatibility" > "Sequential function calling example" > "Turn 1, Step 1 (Model Response)".
SIGNATURES_SEQUENTIAL_STEP1 = r"""{
      "role": "model",
        "tool_calls": [
          {
            "extra_content": {
              "google": {
                "thought_signature": "<Signature A>"
              }
            },
            "function": {
              "arguments": "{\"flight\":\"AA100\"}",
              "name": "check_flight"
            },
            "id": "function-call-1",
            "type": "function"
          }
        ]
    }"""

# ... > "Turn 1, Step 2 (Model)".
SIGNATURES_SEQUENTIAL_STEP2 = r"""{
"role": "model",
"tool_calls": [
{
"extra_content": {
"google": {
"thought_signature": "<Signature B>"
}
            },
            "function": {
              "arguments": "{\"time\":\"10 AM\"}",
              "name": "book_taxi"
            },
            "id": "function-call-2",
            "type": "function"
          }
       ]
}"""

# ... > "Parallel function calling example" > "Turn 1, Step 1 (Model Response)", with the page's two `//`
# comments removed (`//Signature returned` after the signature, `// No signature on Parallel FC` after the
# second call's "type"); nothing else changed.
SIGNATURES_PARALLEL_STEP1 = r"""{
"role": "assistant",
        "tool_calls": [
          {
            "extra_content": {
              "google": {
                "thought_signature": "<Signature A>"
              }
            },
            "function": {
              "arguments": "{\"location\":\"Paris\"}",
              "name": "get_current_temperature"
            },
            "id": "function-call-f3b9ecb3-d55f-4076-98c8-b13e9d1c0e01",
            "type": "function"
          },
          {
            "function": {
              "arguments": "{\"location\":\"London\"}",
              "name": "get_current_temperature"
            },
            "id": "function-call-335673ad-913e-42d1-bbf5-387c8ab80f44",
            "type": "function"
          }
        ]
}"""

# ---------------------------------------------------------------------------------------------------------
# The recordings.
# ---------------------------------------------------------------------------------------------------------

RECORDINGS = [
    {
        "case": "docs-vertex-function-call-stream",
        "endpoint": {**VERTEX, "model": "google/gemini-3.1-pro-preview"},
        "provenance": {
            "url": V_EX,
            "title": "Sample curl requests > Use stream_function_call_arguments (example responses)",
            "abridged": 'the first event\'s extra_content.google.thought_signature is printed as "..."',
            "request": "printed",
            "request_note": "the curl body's backslash line continuations inside the quoted JSON are dropped",
        },
        "request": {
            "model": "google/gemini-3.1-pro-preview",
            "messages": [{"role": "user", "content": "What is the weather like in Boston and New Delhi today?"}],
            "tools": [WEATHER_TOOL],
            "extra_body": {"google": {"stream_function_call_arguments": True}},
            "stream": True,
        },
        "events": FC_STREAM_EVENTS,
    },
    {
        "case": "docs-vertex-image-generation",
        "endpoint": {**VERTEX, "model": "google/gemini-3-pro-image-preview"},
        "provenance": {
            "url": V_EX,
            "title": "Sample curl requests > Image generation (example response)",
            "abridged": 'message.audio.data is printed as "<BASE64_BYTES>" and message.extra_content.google.'
            'thought_signature as "..." (the image bytes and the signature are cut)',
            "request": "printed",
        },
        "request": {
            "model": "google/gemini-3-pro-image-preview",
            "messages": [{"role": "user", "content": "Generate an image of a cat."}],
            "modalities": ["image"],
        },
        "body": IMAGE_GENERATION,
    },
    {
        "case": "docs-vertex-multimodal-function-response",
        "endpoint": {**VERTEX, "model": "google/gemini-3.1-pro-preview"},
        "provenance": {
            "url": V_EX,
            "title": "Sample curl requests > Multi-modal function responses (example response)",
            "abridged": "nothing in the response; the request's thought signature is the page's placeholder "
            '"<THOUGHT_SIGNATURE>"',
            "request": "printed",
            "request_note": "the curl body's backslash line continuations inside the quoted JSON are dropped",
        },
        "request": {
            "model": "google/gemini-3.1-pro-preview",
            "messages": [
                {"role": "user", "content": "Show me the green shirt I ordered last month."},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "extra_content": {"google": {"thought_signature": "<THOUGHT_SIGNATURE>"}},
                            "function": {"arguments": '{"item_name":"green shirt"}', "name": "get_image"},
                            "id": "function-call-a350228d-0283-4792-8bfa-40da064fb959",
                            "type": "function",
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "function-call-a350228d-0283-4792-8bfa-40da064fb959",
                    "content": '{"image_ref":{"$ref":"dress.jpg"}}',
                    "extra_content": {
                        "google": {
                            "parts": [
                                {
                                    "file_data": {
                                        "mime_type": "image/jpg",
                                        "display_name": "dress.jpg",
                                        "file_uri": "gs://cloud-samples-data/generative-ai/image/dress.jpg",
                                    }
                                }
                            ]
                        }
                    },
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_image",
                        "description": "Retrieves the image file reference for a specific order item.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "item_name": {
                                    "type": "string",
                                    "description": "The name or description of the item ordered (e.g., 'green shirt').",
                                }
                            },
                            "required": ["item_name"],
                        },
                    },
                }
            ],
        },
        "body": MULTIMODAL_FUNCTION_RESPONSE,
    },
    {
        "case": "docs-vertex-start-image-generation",
        "endpoint": {**VERTEX, "model": "google/gemini-2.5-flash-image-preview"},
        "provenance": {
            "url": V_START,
            "title": 'Generate an image (REST: "a JSON response similar to the following")',
            "abridged": 'choices[0].image.data is printed as "IMAGE_DATA"; the id "sample_response_id" and created '
            "1757099999 are the page's own illustrative values. A later copy of the page names the model "
            "google/gemini-3.1-flash-image in request and response, otherwise the same",
            "request": "printed",
        },
        "request": {
            "model": "google/gemini-2.5-flash-image-preview",
            "messages": [{"role": "user", "content": "Generate an image of a banana."}],
            "modalities": ["image", "text"],
        },
        "body": START_IMAGE_GENERATION,
    },
    {
        "case": "docs-gemini-api-signatures-sequential-step1",
        "endpoint": {**GEMINI, "model": "google/gemini-3-pro-preview"},
        "provenance": {
            "url": G_TS,
            "title": "Signatures for OpenAI compatibility > Sequential function calling example > "
            "Turn 1, Step 1 (Model Response)",
            "abridged": 'the page prints only the assistant message (with role "model"); the chat.completion '
            "envelope (id, object, created, model, choices[], finish_reason, usage) is not printed. The "
            'signature is the placeholder "<Signature A>"',
            "request": "printed",
            "request_note": "the page prints no endpoint URL; base_url is the Gemini API's documented OpenAI "
            "base (https://ai.google.dev/gemini-api/docs/openai)",
        },
        "request": {
            "model": "google/gemini-3-pro-preview",
            "messages": [{"role": "user", "content": FLIGHT_PROMPT}],
            "tools": FLIGHT_TOOLS,
        },
        "body": SIGNATURES_SEQUENTIAL_STEP1,
    },
    {
        "case": "docs-gemini-api-signatures-sequential-step2",
        "endpoint": {**GEMINI, "model": "google/gemini-3-pro-preview"},
        "provenance": {
            "url": G_TS,
            "title": "Signatures for OpenAI compatibility > Sequential function calling example > "
            "Turn 1, Step 2 (Model)",
            "abridged": 'the page prints only the assistant message (with role "model"); the chat.completion '
            'envelope is not printed. The signature is the placeholder "<Signature B>"',
            "request": "reconstructed",
            "request_note": 'messages are the page\'s "Turn 1, Step 2 (User Response - Sending Tool Outputs)" '
            "list as printed (its `//Required and Validated` comment removed); model and tools, which that "
            "fragment omits, are taken from the same example's Step 1 request",
        },
        "request": {
            "model": "google/gemini-3-pro-preview",
            "messages": [
                {"role": "user", "content": FLIGHT_PROMPT},
                {
                    "role": "model",
                    "tool_calls": [
                        {
                            "extra_content": {"google": {"thought_signature": "<Signature A>"}},
                            "function": {"arguments": '{"flight":"AA100"}', "name": "check_flight"},
                            "id": "function-call-1",
                            "type": "function",
                        }
                    ],
                },
                {
                    "role": "tool",
                    "name": "check_flight",
                    "tool_call_id": "function-call-1",
                    "content": '{"status":"delayed","departure_time":"12 PM"}',
                },
            ],
            "tools": FLIGHT_TOOLS,
        },
        "body": SIGNATURES_SEQUENTIAL_STEP2,
    },
    {
        "case": "docs-gemini-api-signatures-parallel-step1",
        "endpoint": {**GEMINI, "model": "google/gemini-3-pro-preview"},
        "provenance": {
            "url": G_TS,
            "title": "Signatures for OpenAI compatibility > Parallel function calling example > "
            "Turn 1, Step 1 (Model Response)",
            "abridged": "the page prints only the assistant message; the chat.completion envelope is not "
            'printed. The signature is the placeholder "<Signature A>"',
            "edited": "the page's two // comments inside the JSON are removed (//Signature returned, "
            "// No signature on Parallel FC); nothing else",
            "request": "reconstructed",
            "request_note": "the page prints this step's request in the native generateContent form "
            "(contents, functionDeclarations); this is the same user text and function as a Chat Completions "
            "request, with the model of the section's sequential example",
        },
        "request": {
            "model": "google/gemini-3-pro-preview",
            "messages": [{"role": "user", "content": "Check the weather in Paris and London."}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_current_temperature",
                        "description": "Gets the current temperature for a given location.",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "location": {"type": "string", "description": "The city name, e.g. San Francisco"}
                            },
                            "required": ["location"],
                        },
                    },
                }
            ],
        },
        "body": SIGNATURES_PARALLEL_STEP1,
    },
]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line bodies as literal blocks, as the harness writes them, so they read as the page prints them.
    if "\n" in value and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]|[ \t]\n|\r", value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def document(spec: dict) -> dict:
    endpoint = spec["endpoint"]
    streamed = "events" in spec
    response: dict = {
        "status": 200,
        "headers": [["content-type", "text/event-stream" if streamed else "application/json"]],
    }
    if streamed:
        response["chunks"] = [{"at_ms": i, "text": event + "\n\n"} for i, event in enumerate(spec["events"])]
    else:
        response["body"] = {"text": spec["body"]}
    return {
        "format": "chat-conformance/recording@1",
        "case": spec["case"],
        "endpoint": {k: endpoint[k] for k in ("name", "base_url", "model", "profile")},
        "provenance": {
            "source": "documentation",
            "url": spec["provenance"]["url"],
            "title": spec["provenance"]["title"],
            "retrieved": RETRIEVED,
            "harness_version": HARNESS_VERSION,
            **{k: v for k, v in spec["provenance"].items() if k not in ("url", "title")},
        },
        "request": {
            "method": "POST",
            "url": endpoint["base_url"] + "/chat/completions",
            "headers": {"content-type": "application/json", "authorization": "[redacted]"},
            "body": spec["request"],
        },
        "response": response,
        "timings": None,
    }


def main() -> None:
    for spec in RECORDINGS:
        for event in spec.get("events", []):  # every printed event is a data: line with JSON or [DONE]
            payload = event.removeprefix("data: ")
            assert payload == "[DONE]" or json.loads(payload)
        doc = document(spec)
        path = HERE / "recordings" / doc["endpoint"]["name"] / f"{spec['case']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120))
        print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
