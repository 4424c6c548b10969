"""Event schemas: `x-tablium-event` becomes typed publish/subscribe functions; a bad declaration
is an error naming the file, the pointer and the reason, and nothing is written."""
import copy
import json
import os
import sys
import unittest

try:
    from .test_errors import CliCase
except ImportError:  # run as a script from tests/generator
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_errors import CliCase

ENVELOPE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "schemas", "events", "envelope.json")

EVENT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "x-tablium-event": {"type": "shop.order.placed", "version": "1.0", "transport": "rabbitmq",
                        "key": "orderId", "producer": "shop-service"},
    "type": "object",
    "required": ["orderId", "total"],
    "properties": {"orderId": {"type": "string"}, "total": {"type": "integer"}},
    "additionalProperties": False,
}


class EventsCase(CliCase):
    def event(self, name="shop.order.placed.v1.json", **changes):
        doc = copy.deepcopy(EVENT)
        for k, v in changes.items():
            if v is None:
                doc["x-tablium-event"].pop(k, None)
            else:
                doc["x-tablium-event"][k] = v
        return self.write(name, doc)

    def test_a_durable_event_gets_publish_outbox_and_subscribe(self):
        ev = self.event()
        h, c = self.assertOk(ENVELOPE, ev)
        for decl in ("extern const tb_event_type shop_order_placed_v1_event;",
                     "int shop_order_placed_v1_publish(tb_bus *bus",
                     "int shop_order_placed_v1_publish_async(tb_bus *bus",
                     "int shop_order_placed_v1_outbox(sqlite3 *db",
                     "typedef int (*shop_order_placed_v1_handler)(tb_ctx *ctx, const tb_event *ev",
                     "int shop_order_placed_v1_subscribe(tb_bus *bus"):
            self.assertIn(decl, h)
        self.assertIn('"shop.order.placed", "1.0", TB_TRANSPORT_RABBITMQ,', c)
        self.assertIn('"orderId", "shop-service",', c)

    def test_modelled_keywords_get_a_struct_check(self):
        # string, integer, nested object and array keywords map onto the C struct: the
        # publishers write valid data straight from it, keyed by the member
        doc = copy.deepcopy(EVENT)
        doc["properties"]["total"].update(minimum=0, maximum=100)
        doc["properties"]["orderId"].update(pattern="^o[0-9]+$", maxLength=20)
        doc["properties"]["lines"] = {"type": "array", "maxItems": 3, "uniqueItems": True,
                                      "items": {"type": "string", "minLength": 1}}
        h, c = self.assertOk(ENVELOPE, self.write("shop.order.placed.v1.json", doc))
        self.assertIn("bool shop_order_placed_v1__fast_valid(const shop_order_placed_v1 *data);", h)
        # the event table names the struct check and the key member (tb_event_publish reads them)
        self.assertRegex(c, r"&shop_order_placed_v1__desc, out__sc[0-9]+,\n"
                            r"    TB_CK_STRING, offsetof\(shop_order_placed_v1, order_id\),")
        for check in ("if (!(x >= 0.0L))", "if (!(x <= 100.0L))", "if (sn > 20 &&",
                      "if (an > 3)", "if (v->lines[i] && v->lines[m] && strcmp("):
            self.assertIn(check, c)

    def test_unmodelled_keywords_keep_the_json_path(self):
        # anyOf, const, multipleOf: no struct check; publish validates the JSON as before
        for change in ({"anyOf": [{"minimum": 1}, {"maximum": -1}]}, {"const": 5},
                       {"multipleOf": 5}):
            doc = copy.deepcopy(EVENT)
            doc["properties"]["total"].update(change)
            h, c = self.assertOk(ENVELOPE, self.write("shop.order.placed.v1.json", doc))
            self.assertNotIn("__fast_valid", h, change)
            self.assertIn("&shop_order_placed_v1__desc, NULL,", c, change)  # no struct check

    def test_unique_items_of_an_enum_listing_a_value_twice_keep_the_json_path(self):
        # two C constants write "a": comparing the constants would miss a duplicate
        doc = copy.deepcopy(EVENT)
        doc["properties"]["tags"] = {"type": "array", "uniqueItems": True,
                                     "items": {"enum": ["a", "a", "b"]}}
        h, _ = self.assertOk(ENVELOPE, self.write("shop.order.placed.v1.json", doc))
        self.assertNotIn("__fast_valid", h)
        doc["properties"]["tags"]["items"]["enum"] = ["a", "b"]
        h, _ = self.assertOk(ENVELOPE, self.write("shop.order.placed.v1.json", doc))
        self.assertIn("__fast_valid", h)

    def test_a_redis_event_has_no_outbox(self):
        h, _ = self.assertOk(ENVELOPE, self.event(transport="redis"))
        self.assertIn("shop_order_placed_v1_publish(", h)
        self.assertNotIn("shop_order_placed_v1_outbox(", h)

    def test_bad_declarations_name_the_member(self):
        cases = [
            (dict(type="Order Placed"), "/x-tablium-event/type"),
            (dict(version="1"), "/x-tablium-event/version"),
            (dict(transport="kafka"), "/x-tablium-event/transport"),
            (dict(key="customerId"), "/x-tablium-event/key"),
            (dict(color="red"), "/x-tablium-event/color"),
        ]
        for changes, pointer in cases:
            with self.subTest(changes=changes):
                err = self.assertFails(ENVELOPE, self.event(**changes))
                self.assertIn(pointer, err)

    def test_the_key_must_be_required(self):
        doc = copy.deepcopy(EVENT)
        doc["properties"]["note"] = {"type": "string"}
        doc["x-tablium-event"]["key"] = "note"
        err = self.assertFails(ENVELOPE, self.write("e.json", doc))
        self.assertIn("/x-tablium-event/key", err)
        self.assertIn("must be required", err)

    def test_one_type_and_version_is_declared_once(self):
        a = self.event("a.json")
        b = self.event("b.json")
        err = self.assertFails(ENVELOPE, a, b)
        self.assertIn("shop.order.placed 1.0 is already declared", err)

    def test_versions_of_one_type_coexist(self):
        self.assertOk(ENVELOPE, self.event("v1.json"), self.event("v2.json", version="2.0"))

    def test_events_need_the_envelope(self):
        err = self.assertFails(self.event())
        self.assertIn("event_envelope", err)


if __name__ == "__main__":
    unittest.main()
