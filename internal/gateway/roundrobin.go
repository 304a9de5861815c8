package gateway

import (
	"context"
	"errors"
	"sync/atomic"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// RoundRobin is a Checker over several uraiden replicas, as Envoy's cluster of several
// endpoints is: it sends each Check to the next replica in turn and, when one fails (an
// error, not a denial), to the one after, as Envoy's retry policy does. A denial is an
// answer and is never retried: a 503 is the client's to retry, with the same proof.
type RoundRobin struct {
	next     atomic.Uint64
	checkers []Checker
	down     []atomic.Bool
}

// NewRoundRobin spreads Checks over checkers, all up.
func NewRoundRobin(checkers ...Checker) *RoundRobin {
	return &RoundRobin{checkers: checkers, down: make([]atomic.Bool, len(checkers))}
}

// ErrNoReplica is returned when every replica is marked down.
var ErrNoReplica = errors.New("gateway: every authorization replica is down")

// SetDown takes replica i out of the rotation (or puts it back), as Envoy's health checks
// and outlier detection do; a replica that fails without being marked down is still skipped
// for that Check.
func (r *RoundRobin) SetDown(i int, down bool) { r.down[i].Store(down) }

// Down reports whether replica i is out of the rotation.
func (r *RoundRobin) Down(i int) bool { return r.down[i].Load() }

// Check asks the next replica that is up, trying each at most once.
func (r *RoundRobin) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	err := ErrNoReplica
	for range len(r.checkers) {
		i := r.next.Add(1) % uint64(len(r.checkers))
		if r.down[i].Load() {
			continue
		}
		resp, cerr := r.checkers[i].Check(ctx, req)
		if cerr == nil {
			return resp, nil
		}
		err = cerr
	}
	return nil, err
}

// GRPCChecker is a Checker that asks a uraiden replica over gRPC, as Envoy does.
func GRPCChecker(c authv3.AuthorizationClient) Checker { return grpcChecker{c} }

type grpcChecker struct{ c authv3.AuthorizationClient }

func (g grpcChecker) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return g.c.Check(ctx, req)
}
