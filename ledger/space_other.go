//go:build !unix

package ledger

import "errors"

// freeBytes is not implemented here: the free-space guard is off.
func freeBytes(string) (uint64, error) { return 0, errors.ErrUnsupported }
