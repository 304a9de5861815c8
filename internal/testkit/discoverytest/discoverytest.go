// Package discoverytest compiles the discovery document's JSON Schema for the tests that
// validate documents against it.
package discoverytest

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/uraiden/uraiden/discovery"
)

// Schema compiles discovery.Schema, which checks it against the draft 2020-12 metaschema.
func Schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(discovery.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("prices.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("prices.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}
