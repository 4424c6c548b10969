"""Realtime namespaces (`x-tablium-namespace`): the TypeScript event maps a socket.io-client user
types sockets with, for a project of several namespaces."""
import os
import sys
import unittest

try:
    from .test_errors import CliCase
except ImportError:  # run as a script from tests/generator
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_errors import CliCase


def namespace(name, error_event, error_def):
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-tablium-namespace": {
            "name": name,
            "errorEvent": error_event,
            "clientToServer": {
                "say": {"payload": {"$ref": "#/$defs/line"}, "ack": {"$ref": "#/$defs/line"}}},
            "serverToClient": {
                error_event: {"payload": {"$ref": "#/$defs/" + error_def}},
                "said": {"payload": {"$ref": "#/$defs/line"}}},
        },
        "$defs": {
            "line": {"type": "object", "required": ["text"],
                     "properties": {"text": {"type": "string"}}},
            error_def: {"type": "object", "required": ["code", "message"],
                        "properties": {"code": {"type": "string"},
                                       "message": {"type": "string"}}},
        },
    }


class TypeScriptMaps(CliCase):
    def test_each_namespace_has_its_refusal_and_the_common_one_names_them_all(self):
        # Regression: RealtimeRefusal named the first namespace's error payload for every one
        root = self.write("s/admin.json", namespace("/", "oops", "admin_error"))
        chat = self.write("s/chat.json", namespace("/chat", "error", "chat_error"))
        rc, err = self.gen(root, chat)
        self.assertEqual(rc, 0, err)
        ts = [n for n in self.generated() if n.endswith(".ts")]
        self.assertEqual(len(ts), 1, self.generated())
        with open(os.path.join(self.out, ts[0]), encoding="utf-8") as f:
            text = f.read()
        self.assertRegex(text, r"export interface RealtimeRefusal \{\n  error: (\w+) \| (\w+);\n\}")
        self.assertIn("export interface ChatRefusal {\n  error: ChatChatError;\n}", text)
        # each namespace's acks answer {error} with its own payload
        self.assertIn("ack: (res: ChatLine | { error: ChatChatError }) => void", text)


if __name__ == "__main__":
    unittest.main()
