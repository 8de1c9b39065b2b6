import { describe, expect, it } from "vitest";
import { SchemaName } from "./identifiers.js";
import { isTermNoticeFor } from "./leadership.js";

describe("isTermNoticeFor", () => {
  const schema = new SchemaName("ha");
  const notice = (o: unknown) => JSON.stringify(o);

  it("takes a notice for this schema and cluster, whatever epoch it names", () => {
    expect(isTermNoticeFor(notice({ schema: "ha", cluster_id: "alpha", epoch: 7 }), schema, "alpha")).toBe(true);
    expect(isTermNoticeFor(notice({ schema: "ha", cluster_id: "alpha" }), schema, "alpha")).toBe(true);
  });

  it("ignores other schemas and clusters", () => {
    expect(isTermNoticeFor(notice({ schema: "public", cluster_id: "alpha", epoch: 7 }), schema, "alpha")).toBe(false);
    expect(isTermNoticeFor(notice({ schema: "ha", cluster_id: "beta", epoch: 7 }), schema, "alpha")).toBe(false);
  });

  it.each([undefined, "", "not json", "null", "42", '"ha"', "[]", notice({ schema: ["ha"], cluster_id: "alpha" })])("ignores %j", (payload) => {
    expect(isTermNoticeFor(payload, schema, "alpha")).toBe(false);
  });
});
