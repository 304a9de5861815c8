package checkcodec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// checkDecode holds Decode to both oracles (oracle_test.go) on b, and checks that what it
// kept does not share memory with b, which gRPC returns to its pool after decoding.
func checkDecode(t *testing.T, b []byte) (*authv3.CheckRequest, error) {
	t.Helper()
	var got authv3.CheckRequest
	gotErr := Decode(b, &got)
	want, wantErr := reducedUnmarshal(b)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Decode error %v, proto.Unmarshal of the read fields %v", gotErr, wantErr)
	}
	if gotErr == nil && !proto.Equal(&got, want) {
		t.Fatalf("Decode read\n%v\nproto.Unmarshal of the read fields\n%v", text(&got), text(want))
	}
	var full authv3.CheckRequest
	if err := proto.Unmarshal(b, &full); err == nil {
		if gotErr != nil {
			t.Fatalf("proto.Unmarshal accepts what Decode refuses: %v", gotErr)
		}
		if !proto.Equal(&got, readFields(&full)) {
			t.Fatalf("Decode read\n%v\nproto.Unmarshal read\n%v", text(&got), text(readFields(&full)))
		}
	}
	if gotErr != nil {
		return nil, gotErr
	}
	kept := proto.Clone(&got)
	for i := range b {
		b[i] ^= 0xff
	}
	if !proto.Equal(&got, kept) {
		t.Fatal("the decoded request changed with the buffer it was decoded from")
	}
	return &got, nil
}

func text(m proto.Message) string { return prototext.Format(m) }

// TestFixtures decodes every CheckRequest of authz's fixtures, as Envoy builds them.
func TestFixtures(t *testing.T) {
	reqs := fixtureRequests(t)
	withHeaderMap := 0
	for name, b := range reqs {
		got, err := checkDecode(t, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h := got.GetAttributes().GetRequest().GetHttp()
		if h == nil || (len(h.GetHeaders()) == 0 && len(h.GetHeaderMap().GetHeaders()) == 0) {
			t.Fatalf("%s: no HTTP request or headers decoded", name)
		}
		if len(h.GetHeaderMap().GetHeaders()) > 0 {
			withHeaderMap++
		}
	}
	if withHeaderMap == 0 {
		t.Fatal("no fixture exercises header_map")
	}
}

// fixtureRequests renders authz's fixtures with stand-in proofs (the decoder does not judge
// them) and encodes each with proto.Marshal, by name.
func fixtureRequests(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("../../authz/testdata/checks/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	sig := "0x" + strings.Repeat("ab", 64) + "1b"
	data := map[string]any{
		"Receiver": "0x" + strings.Repeat("11", 20), "Contract": "0x" + strings.Repeat("22", 20),
		"Token": "0x" + strings.Repeat("33", 20), "Payer": "0x" + strings.Repeat("44", 20),
		"Fresh": "0x" + strings.Repeat("55", 20), "PayerBlock": 7, "FreshBlock": 9,
	}
	signed := func(...any) string { return sig }
	funcs := template.FuncMap{
		"sign": signed, "signFresh": signed, "v37": signed, "highS": signed, "signStranger": signed,
		"signFreshTyped": signed, "signTypedOn": signed,
		"b64": func(v any) string { return base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v))) },
	}
	out := map[string][]byte{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var steps []struct {
			Name    string          `json:"name"`
			Request json.RawMessage `json:"request"`
		}
		if err := json.Unmarshal(raw, &steps); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, s := range steps {
			name := filepath.Base(file) + ": " + s.Name
			tmpl, err := template.New(name).Funcs(funcs).Parse(string(s.Request))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var buf bytes.Buffer
			if err := tmpl.Execute(&buf, data); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var req authv3.CheckRequest
			if err := protojson.Unmarshal(buf.Bytes(), &req); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if out[name], err = proto.Marshal(&req); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	return out
}

// Hand-made wire data for what Envoy does not send but protobuf defines.
func bytesField(num protowire.Number, payload []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), payload)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func entry(key, value []byte) []byte {
	var e []byte
	if key != nil {
		e = append(e, bytesField(mapKey, key)...)
	}
	if value != nil {
		e = append(e, bytesField(mapValue, value)...)
	}
	return e
}

// inHTTP wraps HttpRequest fields as a CheckRequest.
func inHTTP(fields ...[]byte) []byte {
	return bytesField(checkRequestAttributes, bytesField(attributesRequest, bytesField(requestHTTP, cat(fields...))))
}

func wireCases() map[string][]byte {
	varint := protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 300)
	group := cat(protowire.AppendTag(nil, 20, protowire.StartGroupType), varint, protowire.AppendTag(nil, 20, protowire.EndGroupType))
	return map[string][]byte{
		"empty":                    nil,
		"later scalar wins":        inHTTP(bytesField(httpPath, []byte("/a")), bytesField(httpPath, []byte("/b"))),
		"messages merged":          cat(inHTTP(bytesField(httpPath, []byte("/a"))), inHTTP(bytesField(httpMethod, []byte("GET")))),
		"map entry without key":    inHTTP(bytesField(httpHeaders, entry(nil, []byte("v")))),
		"map entry without value":  inHTTP(bytesField(httpHeaders, entry([]byte("k"), nil))),
		"map key repeated":         inHTTP(bytesField(httpHeaders, entry([]byte("k"), []byte("1"))), bytesField(httpHeaders, entry([]byte("k"), []byte("2")))),
		"map entry key twice":      inHTTP(bytesField(httpHeaders, cat(entry([]byte("a"), []byte("1")), entry([]byte("b"), nil)))),
		"header_map merged":        inHTTP(bytesField(httpHeaderMap, bytesField(headerMapHeaders, entry([]byte("a"), []byte("1")))), bytesField(httpHeaderMap, bytesField(headerMapHeaders, cat(bytesField(headerKey, []byte("b")), bytesField(headerRawValue, []byte("2")))))),
		"wrong wire type skipped":  inHTTP(protowire.AppendVarint(protowire.AppendTag(nil, httpPath, protowire.VarintType), 1), bytesField(httpHost, []byte("h"))),
		"unknown fields skipped":   cat(varint, group, inHTTP(varint, group, bytesField(httpID, []byte("7")), bytesField(10, []byte("HTTP/1.1")))),
		"empty messages present":   cat(bytesField(checkRequestAttributes, bytesField(attributesRequest, nil))),
		"context_extensions":       bytesField(checkRequestAttributes, cat(bytesField(attributesContextExtensions, entry([]byte("route"), []byte("paid"))))),
		"invalid UTF-8 kept":       inHTTP(bytesField(httpPath, []byte{0xff})),
		"invalid UTF-8 in map":     inHTTP(bytesField(httpHeaders, entry([]byte{0xc0}, []byte("v")))),
		"invalid UTF-8 overridden": inHTTP(bytesField(httpPath, []byte{0xff}), bytesField(httpPath, []byte("/ok"))),
		"invalid UTF-8 raw_value":  inHTTP(bytesField(httpHeaderMap, bytesField(headerMapHeaders, cat(bytesField(headerKey, []byte("k")), bytesField(headerRawValue, []byte{0xff}))))),
		"truncated":                inHTTP(bytesField(httpPath, []byte("/a")))[:5],
		"stray end group":          cat(varint, protowire.AppendTag(nil, 20, protowire.EndGroupType)),
		"field number 0":           {0x02, 0x00},
		"field number at max":      protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.BytesType), 0),
		"field number over max":    protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3|2), 0),
		"reserved wire type":       {0x0e},
		"length past end":          {0x0a, 0x05, 0x00},
	}
}

// TestWireCases checks the protobuf rules Envoy's requests never exercise, and that the
// refusals and acceptances are the ones the case names promise.
func TestWireCases(t *testing.T) {
	refused := map[string]bool{
		"invalid UTF-8 kept": true, "invalid UTF-8 in map": true, "invalid UTF-8 overridden": true,
		"truncated": true, "stray end group": true, "field number 0": true, "field number over max": true,
		"reserved wire type": true, "length past end": true,
	}
	for name, b := range wireCases() {
		t.Run(name, func(t *testing.T) {
			got, err := checkDecode(t, b)
			if (err != nil) != refused[name] {
				t.Fatalf("error %v, want refused %v", err, refused[name])
			}
			h := got.GetAttributes().GetRequest().GetHttp()
			switch name {
			case "later scalar wins":
				if h.GetPath() != "/b" {
					t.Fatalf("path %q", h.GetPath())
				}
			case "messages merged":
				if h.GetPath() != "/a" || h.GetMethod() != "GET" {
					t.Fatalf("path %q method %q", h.GetPath(), h.GetMethod())
				}
			case "map key repeated":
				if h.GetHeaders()["k"] != "2" {
					t.Fatalf("headers %v", h.GetHeaders())
				}
			case "header_map merged":
				if n := len(h.GetHeaderMap().GetHeaders()); n != 2 {
					t.Fatalf("%d header_map values", n)
				}
			case "empty messages present":
				if got.GetAttributes().GetRequest() == nil {
					t.Fatal("empty request not present")
				}
			}
		})
	}
}

// FuzzDecode holds Decode to proto.Unmarshal on any bytes (checkDecode).
func FuzzDecode(f *testing.F) {
	for _, b := range fixtureRequests(f) {
		f.Add(b)
	}
	for _, b := range wireCases() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = checkDecode(t, b)
	})
}
