package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
)

// WriteGhz writes a ghz request file (-D): a JSON list of at least n CheckRequests, each
// with its own pre-signed proof (balances 1, 2, … on every channel in turn, so requests
// on one channel are len(channels) apart). ghz cycles through the list, and each proof is
// accepted once: a load of more requests than the file holds gets 402s for the repeats.
// It returns how many requests it wrote.
func (fx *Fixture) WriteGhz(ctx context.Context, w io.Writer, n int) (int, error) {
	perChannel := (n + len(fx.keys) - 1) / len(fx.keys)
	p, err := fx.SignProofs(ctx, perChannel)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("[\n")
	count := 0
	for k := range perChannel {
		for c := range fx.keys {
			headers := baseHeaders()
			fx.setProof(headers, p, c, k)
			raw, err := protojson.Marshal(checkRequest(headers))
			if err != nil {
				return 0, err
			}
			if count > 0 {
				bw.WriteString(",\n")
			}
			bw.Write(raw)
			count++
		}
	}
	bw.WriteString("\n]\n")
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing the ghz file: %w", err)
	}
	return count, nil
}
