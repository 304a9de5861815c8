package checkcodec

import (
	"errors"
	"fmt"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of what Decode keeps (envoy/service/auth/v3, envoy/config/core/v3).
const (
	checkRequestAttributes = 1 // CheckRequest.attributes

	attributesRequest           = 4  // AttributeContext.request
	attributesContextExtensions = 10 // AttributeContext.context_extensions

	requestHTTP = 2 // AttributeContext.Request.http

	httpID        = 1  // AttributeContext.HttpRequest.id
	httpMethod    = 2  // .method
	httpHeaders   = 3  // .headers
	httpPath      = 4  // .path
	httpHost      = 5  // .host
	httpScheme    = 6  // .scheme
	httpHeaderMap = 13 // .header_map

	headerMapHeaders = 1 // HeaderMap.headers

	headerKey      = 1 // HeaderValue.key
	headerValue    = 2 // HeaderValue.value
	headerRawValue = 3 // HeaderValue.raw_value

	mapKey   = 1 // a map entry's key
	mapValue = 2 // a map entry's value
)

// Decode fills req from the wire bytes b with the fields uraiden reads: attributes.request.http's
// id, method, path, host, scheme, headers and header_map, and attributes.context_extensions.
// Those follow proto.Unmarshal exactly (a later scalar wins, a message given twice is merged,
// a map entry without key or value has the empty string, a key given twice keeps the last;
// invalid UTF-8 in a kept string is an error). Every other field is skipped with its wire
// format checked, not its contents: bytes proto.Unmarshal refuses for a malformed field
// uraiden does not read are accepted here, with the fields it reads decoded as proto.Unmarshal
// decodes them from a message without that field.
//
// The message is copied into one string, and every string kept is a piece of it: one
// allocation instead of one per header key and value, at the price of keeping the whole
// message alive as long as any of them.
func Decode(b []byte, req *authv3.CheckRequest) error {
	proto.Reset(req)
	d := decoder{buf: b, src: string(b)}
	if err := d.checkRequest(req, 0, len(b)); err != nil {
		return fmt.Errorf("decode CheckRequest: %w", err)
	}
	return nil
}

type decoder struct {
	buf []byte // the message; indexes into it are indexes into src
	src string // the message, copied: the kept strings' memory
	raw []byte // the message, copied again at the first raw_value: the raw values' memory
}

// field is one field of a message: its number, wire type, and for a length-delimited one
// where its payload lies.
type field struct {
	num        protowire.Number
	typ        protowire.Type
	start, end int // the payload of a BytesType field
	next       int // where the next field starts
}

var errFieldNumber = errors.New("field number out of range")

// next reads the field at i in a message ending at end. A wire type other than the field's
// declared one is skipped by the callers, as proto.Unmarshal skips it (an unknown field).
func (d *decoder) next(i, end int) (field, error) {
	b := d.buf[i:end]
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, protowire.ParseError(n)
	}
	if num > protowire.MaxValidNumber {
		return field{}, errFieldNumber
	}
	if typ == protowire.BytesType {
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return field{}, protowire.ParseError(m)
		}
		start := i + n + m - len(v)
		return field{num: num, typ: typ, start: start, end: start + len(v), next: i + n + m}, nil
	}
	// An end-group tag here has no group to close: an error, as in proto.Unmarshal.
	m := protowire.ConsumeFieldValue(num, typ, b[n:])
	if m < 0 {
		return field{}, protowire.ParseError(m)
	}
	return field{num: num, typ: typ, next: i + n + m}, nil
}

// str is a string field's value, which proto3 requires to be UTF-8.
func (d *decoder) str(f field) (string, error) {
	s := d.src[f.start:f.end]
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("field %d: string field contains invalid UTF-8", f.num)
	}
	return s, nil
}

// count is how many length-delimited fields num the message holds from i to end: the size
// of a map or a slice made once. Malformed data stops it; the decoding reports it.
func (d *decoder) count(i, end int, num protowire.Number) int {
	n := 0
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			break
		}
		if f.num == num && f.typ == protowire.BytesType {
			n++
		}
		i = f.next
	}
	return n
}

func (d *decoder) checkRequest(m *authv3.CheckRequest, i, end int) error {
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.num == checkRequestAttributes && f.typ == protowire.BytesType {
			if m.Attributes == nil {
				m.Attributes = &authv3.AttributeContext{}
			}
			if err := d.attributes(m.Attributes, f.start, f.end); err != nil {
				return fmt.Errorf("attributes: %w", err)
			}
		}
		i = f.next
	}
	return nil
}

func (d *decoder) attributes(m *authv3.AttributeContext, i, end int) error {
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.typ == protowire.BytesType {
			switch f.num {
			case attributesRequest:
				if m.Request == nil {
					m.Request = &authv3.AttributeContext_Request{}
				}
				if err := d.request(m.Request, f.start, f.end); err != nil {
					return fmt.Errorf("request: %w", err)
				}
			case attributesContextExtensions:
				if m.ContextExtensions == nil {
					m.ContextExtensions = make(map[string]string, d.count(i, end, attributesContextExtensions))
				}
				if err := d.mapEntry(m.ContextExtensions, f.start, f.end); err != nil {
					return fmt.Errorf("context_extensions: %w", err)
				}
			}
		}
		i = f.next
	}
	return nil
}

func (d *decoder) request(m *authv3.AttributeContext_Request, i, end int) error {
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.num == requestHTTP && f.typ == protowire.BytesType {
			if m.Http == nil {
				m.Http = &authv3.AttributeContext_HttpRequest{}
			}
			if err := d.http(m.Http, f.start, f.end); err != nil {
				return fmt.Errorf("http: %w", err)
			}
		}
		i = f.next
	}
	return nil
}

func (d *decoder) http(m *authv3.AttributeContext_HttpRequest, i, end int) error {
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.typ == protowire.BytesType {
			switch f.num {
			case httpID:
				m.Id, err = d.str(f)
			case httpMethod:
				m.Method, err = d.str(f)
			case httpPath:
				m.Path, err = d.str(f)
			case httpHost:
				m.Host, err = d.str(f)
			case httpScheme:
				m.Scheme, err = d.str(f)
			case httpHeaders:
				if m.Headers == nil {
					m.Headers = make(map[string]string, d.count(i, end, httpHeaders))
				}
				if err = d.mapEntry(m.Headers, f.start, f.end); err != nil {
					err = fmt.Errorf("headers: %w", err)
				}
			case httpHeaderMap:
				if m.HeaderMap == nil {
					m.HeaderMap = &corev3.HeaderMap{}
				}
				if err = d.headerMap(m.HeaderMap, f.start, f.end); err != nil {
					err = fmt.Errorf("header_map: %w", err)
				}
			}
			if err != nil {
				return err
			}
		}
		i = f.next
	}
	return nil
}

// headerMap appends the headers to m's: a repeated field's elements are never merged.
func (d *decoder) headerMap(m *corev3.HeaderMap, i, end int) error {
	// One allocation for all the values instead of one each.
	values := make([]corev3.HeaderValue, d.count(i, end, headerMapHeaders))
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.num == headerMapHeaders && f.typ == protowire.BytesType {
			hv := &values[0]
			values = values[1:]
			if err := d.headerValue(hv, f.start, f.end); err != nil {
				return err
			}
			m.Headers = append(m.Headers, hv)
		}
		i = f.next
	}
	return nil
}

func (d *decoder) headerValue(m *corev3.HeaderValue, i, end int) error {
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.typ == protowire.BytesType {
			switch f.num {
			case headerKey:
				m.Key, err = d.str(f)
			case headerValue:
				m.Value, err = d.str(f)
			case headerRawValue:
				if d.raw == nil {
					d.raw = []byte(d.src)
				}
				// Capacity cut at the end: an append to one value cannot overwrite the next.
				m.RawValue = d.raw[f.start:f.end:f.end]
			}
			if err != nil {
				return err
			}
		}
		i = f.next
	}
	return nil
}

// mapEntry adds one map<string, string> entry to m; a key already there takes the new value.
func (d *decoder) mapEntry(m map[string]string, i, end int) error {
	var key, value string
	for i < end {
		f, err := d.next(i, end)
		if err != nil {
			return err
		}
		if f.typ == protowire.BytesType {
			switch f.num {
			case mapKey:
				key, err = d.str(f)
			case mapValue:
				value, err = d.str(f)
			}
			if err != nil {
				return err
			}
		}
		i = f.next
	}
	m[key] = value
	return nil
}
