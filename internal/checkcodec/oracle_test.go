package checkcodec

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The oracles Decode is held to, both proto.Unmarshal's:
//
//   - readFields(proto.Unmarshal into CheckRequest): whenever proto.Unmarshal accepts the
//     bytes, Decode must too, with the same fields read;
//   - reducedUnmarshal: proto.Unmarshal into a CheckRequest whose types declare only the
//     fields Decode keeps, so that proto.Unmarshal skips the rest as unknown fields. Decode
//     must accept and refuse exactly the same bytes, with the same fields read.

// readFields is a copy of what uraiden reads from req, with the presence of each message.
func readFields(req *authv3.CheckRequest) *authv3.CheckRequest {
	out := &authv3.CheckRequest{}
	a := req.GetAttributes()
	if a == nil {
		return out
	}
	out.Attributes = &authv3.AttributeContext{ContextExtensions: a.GetContextExtensions()}
	if a.GetRequest() == nil {
		return out
	}
	out.Attributes.Request = &authv3.AttributeContext_Request{}
	h := a.GetRequest().GetHttp()
	if h == nil {
		return out
	}
	out.Attributes.Request.Http = &authv3.AttributeContext_HttpRequest{
		Id: h.GetId(), Method: h.GetMethod(), Headers: h.GetHeaders(), Path: h.GetPath(),
		Host: h.GetHost(), Scheme: h.GetScheme(), HeaderMap: h.GetHeaderMap(),
	}
	return out
}

// reducedUnmarshal decodes b as proto.Unmarshal would if CheckRequest declared only the
// fields Decode keeps.
func reducedUnmarshal(b []byte) (*authv3.CheckRequest, error) {
	msg := dynamicpb.NewMessage(reducedCheckRequest)
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, msg); err != nil {
		return nil, err
	}
	kept, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("re-marshal: %w", err)
	}
	var req authv3.CheckRequest
	if err := proto.Unmarshal(kept, &req); err != nil {
		return nil, fmt.Errorf("the reduced message is no CheckRequest: %w", err)
	}
	return &req, nil
}

var reducedCheckRequest = func() protoreflect.MessageDescriptor {
	str := func(name string, num int32) *descriptorpb.FieldDescriptorProto {
		return fieldProto(name, num, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")
	}
	msg := func(name string, num int32, typ string) *descriptorpb.FieldDescriptorProto {
		return fieldProto(name, num, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, typ)
	}
	mapOf := func(name string, num int32, entry string) *descriptorpb.FieldDescriptorProto {
		f := msg(name, num, entry)
		f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		return f
	}
	entry := func(name string) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Field:   []*descriptorpb.FieldDescriptorProto{str("key", 1), str("value", 2)},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
	}
	headers := msg("headers", headerMapHeaders, ".reduced.HeaderValue")
	headers.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("reduced.proto"), Package: proto.String("reduced"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("CheckRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				msg("attributes", checkRequestAttributes, ".reduced.AttributeContext")}},
			{Name: proto.String("AttributeContext"), Field: []*descriptorpb.FieldDescriptorProto{
				msg("request", attributesRequest, ".reduced.Request"),
				mapOf("context_extensions", attributesContextExtensions, ".reduced.AttributeContext.ContextExtensionsEntry"),
			}, NestedType: []*descriptorpb.DescriptorProto{entry("ContextExtensionsEntry")}},
			{Name: proto.String("Request"), Field: []*descriptorpb.FieldDescriptorProto{
				msg("http", requestHTTP, ".reduced.HttpRequest")}},
			{Name: proto.String("HttpRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				str("id", httpID), str("method", httpMethod),
				mapOf("headers", httpHeaders, ".reduced.HttpRequest.HeadersEntry"),
				str("path", httpPath), str("host", httpHost), str("scheme", httpScheme),
				msg("header_map", httpHeaderMap, ".reduced.HeaderMap"),
			}, NestedType: []*descriptorpb.DescriptorProto{entry("HeadersEntry")}},
			{Name: proto.String("HeaderMap"), Field: []*descriptorpb.FieldDescriptorProto{headers}},
			{Name: proto.String("HeaderValue"), Field: []*descriptorpb.FieldDescriptorProto{
				str("key", headerKey), str("value", headerValue),
				fieldProto("raw_value", headerRawValue, descriptorpb.FieldDescriptorProto_TYPE_BYTES, ""),
			}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(err) // the descriptor is a constant
	}
	return fd.Messages().ByName("CheckRequest")
}()

func fieldProto(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
	f := &descriptorpb.FieldDescriptorProto{
		Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(),
		Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
	}
	if typeName != "" {
		f.TypeName = proto.String(typeName)
	}
	return f
}
