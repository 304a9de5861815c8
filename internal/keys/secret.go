package keys

import (
	"fmt"
	"strings"
)

// ReadSecret reads a secret other than a key (a token, a password) from a file that group
// and others cannot read, without surrounding whitespace.
func ReadSecret(path string) (string, error) {
	data, err := readPrivate(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}
