package gateway

import (
	"context"
	"errors"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// replica answers resp, or fails with err, counting the Checks it was asked.
type replica struct {
	resp  *authv3.CheckResponse
	err   error
	asked int
}

func (r *replica) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r.asked++
	return r.resp, r.err
}

// Checks go to each replica in turn; one that fails is passed over to the next, a denial is
// an answer, a replica marked down is never asked, and with all down the Check fails.
func TestRoundRobin(t *testing.T) {
	ok := &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}
	denied := &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}}}}
	a, b, c := &replica{resp: ok}, &replica{resp: ok}, &replica{resp: denied}
	rr := NewRoundRobin(a, b, c)
	for range 6 {
		if _, err := rr.Check(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if a.asked != 2 || b.asked != 2 || c.asked != 2 {
		t.Errorf("asked %d, %d, %d times; want 2 each", a.asked, b.asked, c.asked)
	}

	b.err = errors.New("connection refused")
	passedOver := 0
	for range 6 {
		asked := b.asked
		resp, err := rr.Check(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.asked > asked {
			passedOver++
			// b's turn went to the next replica, c, whose 503 is an answer: not retried at a.
			if resp != denied {
				t.Errorf("a Check b failed was answered %v, want c's denial", resp)
			}
		}
	}
	if passedOver == 0 {
		t.Error("b was never asked")
	}

	rr.SetDown(2, true)
	before := c.asked
	for range 3 {
		resp, err := rr.Check(t.Context(), nil)
		if err != nil || resp != ok {
			t.Fatalf("%v, %v", resp, err)
		}
	}
	if c.asked != before || !rr.Down(2) {
		t.Errorf("c, marked down, was asked %d times", c.asked-before)
	}
	rr.SetDown(0, true)
	if _, err := rr.Check(t.Context(), nil); err == nil || err.Error() != "connection refused" {
		t.Errorf("with only the failing replica up: %v", err)
	}
	rr.SetDown(1, true)
	if _, err := rr.Check(t.Context(), nil); !errors.Is(err, ErrNoReplica) {
		t.Errorf("with every replica down: %v, want ErrNoReplica", err)
	}
}
