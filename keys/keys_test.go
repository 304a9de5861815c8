package keys

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

const hexKey = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"

func write(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadHex(t *testing.T) {
	for _, content := range []string{hexKey, "0x" + hexKey + "\n"} {
		key, err := Load(write(t, "key", content, 0o600), "")
		if err != nil {
			t.Fatal(err)
		}
		if got := crypto.PubkeyToAddress(key.PublicKey).Hex(); got != "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6" {
			t.Errorf("address %s", got)
		}
	}
}

func TestLoadKeystore(t *testing.T) {
	priv, _ := crypto.HexToECDSA(hexKey)
	id, _ := uuid.NewRandom()
	blob, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv},
		"secret", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	path := write(t, "keystore.json", string(blob), 0o600)
	key, err := Load(path, write(t, "password", "secret\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if key.D.Cmp(priv.D) != 0 {
		t.Error("wrong key")
	}
	if _, err := Load(path, write(t, "password", "wrong", 0o600)); err == nil {
		t.Error("wrong password accepted")
	}
	if _, err := Load(path, ""); err == nil || !strings.Contains(err.Error(), "password file") {
		t.Errorf("no password file: %v", err)
	}
}

func TestRefusesReadableByOthers(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if _, err := Load(write(t, "key", hexKey, mode), ""); !errors.Is(err, ErrPermissions) {
			t.Errorf("mode %o: err = %v", mode, err)
		}
	}
	ks := write(t, "ks", `{"crypto":{}}`, 0o600)
	if _, err := Load(ks, write(t, "pw", "x", 0o644)); !errors.Is(err, ErrPermissions) {
		t.Errorf("readable password file: err = %v", err)
	}
}

func TestErrorsDoNotLeakKey(t *testing.T) {
	bad := hexKey[:60] + "zz" // almost a key
	_, err := Load(write(t, "key", bad, 0o600), "")
	if err == nil || strings.Contains(err.Error(), hexKey[:20]) {
		t.Errorf("err = %v", err)
	}
}

// A Secret shows Redacted wherever it is printed: every fmt verb, inside exported and
// unexported fields and behind pointers, slog's text and JSON handlers, encoding/json.
func TestSecretIsRedacted(t *testing.T) {
	priv, _ := crypto.HexToECDSA(hexKey)
	s := NewSecret(priv)
	if s.Reveal() != priv || NewSecret("x").Reveal() != "x" || (Secret[string]{}).Reveal() != "" {
		t.Fatal("Reveal does not return the value")
	}
	type holder struct {
		Exported Secret[*ecdsa.PrivateKey]
		hidden   Secret[*ecdsa.PrivateKey]
	}
	h := holder{s, s}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&out, verb+"|", s)
		fmt.Fprintf(&out, verb+"|", h)
		fmt.Fprintf(&out, verb+"|", &h)
		fmt.Fprintf(&out, verb+"|", []any{s})
	}
	out.WriteString(fmt.Errorf("wrapped: %w", errors.New(s.String())).Error())
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(data)
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)))
	logger.Info("x", "key", s, "holder", h, "group", slog.GroupValue(slog.Any("k", s)))
	text := strings.ToLower(out.String())
	for _, leak := range []string{hexKey, priv.D.String(), base64.StdEncoding.EncodeToString(crypto.FromECDSA(priv))} {
		if strings.Contains(text, strings.ToLower(leak)) {
			t.Fatalf("a Secret printed its value: %s", out.String())
		}
	}
	if !strings.Contains(text, Redacted) {
		t.Errorf("no %s in %s", Redacted, text)
	}
	// Without the Secret, the same printing leaks: the test would catch a regression.
	if !strings.Contains(fmt.Sprintf("%v", priv), priv.D.String()) {
		t.Error("control: printing a bare key no longer shows it")
	}
}
