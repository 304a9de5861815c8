// Package archtest holds the architecture test: which of the module's packages may import
// which, read from 'go list'. It has no code of its own.
package archtest
