// Package keys loads Ethereum private keys from files: a geth JSON keystore (with a password
// file) or a file holding the key as hex. Key files readable by group or others are refused,
// as ssh does, and no error ever contains key material. Secret holds a key (or any other
// secret) so that it never prints: the library packages take the receiver's key as one.
package keys

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
)

// ErrPermissions is returned for key or password files that others can read.
var ErrPermissions = errors.New("readable by group or others (chmod 600 it)")

// Load reads a private key. passwordFile is needed for a JSON keystore and ignored otherwise.
func Load(path, passwordFile string) (*ecdsa.PrivateKey, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("{")) {
		if passwordFile == "" {
			return nil, fmt.Errorf("key file %s is a keystore: a password file is needed", path)
		}
		password, err := ReadPrivate(passwordFile)
		if err != nil {
			return nil, err
		}
		key, err := keystore.DecryptKey(data, strings.TrimRight(string(password), "\r\n"))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return key.PrivateKey, nil
	}
	text := strings.TrimPrefix(strings.TrimPrefix(string(data), "0x"), "0X")
	key, err := crypto.HexToECDSA(text)
	if err != nil {
		// crypto's error may quote the input; say only what is wrong.
		return nil, fmt.Errorf("key file %s: not a JSON keystore nor a 32-byte hex key", path)
	}
	return key, nil
}

// ReadPrivate reads a file that holds a secret (a key, a password, a token), refusing it
// with ErrPermissions when group or others can read it: a secret others can read is no
// longer one, and refusing it at start beats finding out later.
func ReadPrivate(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is %w", path, ErrPermissions)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	return data, nil
}
