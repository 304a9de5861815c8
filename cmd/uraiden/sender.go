package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/pflag"

	"github.com/uraiden/uraiden/chain/devchain"
	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/keys"
)

// senderFlags are the flags of the sender's commands (get, channel): the key, the node, the
// contract and the local store.
type senderFlags struct {
	keyFile, passwordFile string
	devAccount            int
	rpc                   string
	contract              string
	store                 string
	erc20                 bool
	// proofScheme is --proof-scheme, registered only where proofs are signed (get, channel
	// close); elsewhere (hasScheme false) the client is auto.
	proofScheme string
	hasScheme   bool
}

func (f *senderFlags) register(flags *pflag.FlagSet) {
	flags.StringVar(&f.keyFile, "key-file", "", "the sender's key: a geth JSON keystore (with --password-file) or a hex key file, chmod 600")
	flags.StringVar(&f.passwordFile, "password-file", "", "password of a JSON keystore, chmod 600")
	flags.IntVar(&f.devAccount, "dev-account", -1, "DEV ONLY: use the public key of embedded dev chain account N instead of --key-file")
	flags.StringVar(&f.rpc, "rpc", "", "Ethereum node JSON-RPC URL (default: the dev chain of a running uraiden serve, http://<devchain.listen>)")
	flags.StringVar(&f.contract, "contract", "", "the channel contract to trust (get: default, the one the server names)")
	flags.StringVar(&f.store, "store", "", "JSON file of channels and signed balances (default: in the user config directory)")
	flags.BoolVar(&f.erc20, "erc20", false, "fund channels with approve + createChannel/topUp instead of an ERC223 transfer")
}

// registerProofScheme adds --proof-scheme, for the commands that sign balance proofs or closes.
func (f *senderFlags) registerProofScheme(flags *pflag.FlagSet) {
	f.hasScheme = true
	flags.StringVar(&f.proofScheme, "proof-scheme", string(client.ProofSchemeAuto),
		"scheme of the balance proofs and close signed: auto (eip712 when the server offers it for this chain and contract, else legacy), eip712 (fail if not offered) or legacy")
}

// scheme is --proof-scheme, checked.
func (f *senderFlags) scheme() (client.ProofScheme, error) {
	if !f.hasScheme {
		return client.ProofSchemeAuto, nil
	}
	scheme, err := client.ParseProofScheme(f.proofScheme)
	if err != nil {
		return "", fmt.Errorf("--proof-scheme: %w", err)
	}
	return scheme, nil
}

func (f *senderFlags) key() (*ecdsa.PrivateKey, error) {
	switch {
	case f.devAccount >= 0 && f.keyFile != "":
		return nil, errors.New("give --key-file or --dev-account, not both")
	case f.devAccount >= 0:
		return devchain.DevKey(f.devAccount), nil
	case f.keyFile != "":
		return keys.Load(f.keyFile, f.passwordFile)
	default:
		return nil, errors.New("the sender's key is needed: --key-file (or --dev-account N on the dev chain)")
	}
}

// open connects a client to contract (default --contract), on --rpc or the dev chain's RPC.
func (f *senderFlags) open(ctx context.Context, a *app, contract string) (*client.Client, error) {
	scheme, err := f.scheme()
	if err != nil {
		return nil, err
	}
	key, err := f.key()
	if err != nil {
		return nil, err
	}
	if contract == "" {
		contract = f.contract
	}
	if !common.IsHexAddress(contract) {
		return nil, fmt.Errorf("--contract: not an address: %q", contract)
	}
	rpc := f.rpc
	if rpc == "" {
		rpc = "http://" + a.cfg.DevChain.Listen
	}
	store := f.store
	if store == "" {
		if store, err = defaultStore(crypto.PubkeyToAddress(key.PublicKey), common.HexToAddress(contract)); err != nil {
			return nil, err
		}
	}
	return client.New(ctx, client.Config{RPCURL: rpc, Key: key, Contract: common.HexToAddress(contract), StorePath: store, ProofScheme: scheme, Logger: a.log})
}

// defaultStore is <user config dir>/uraiden/channels-<contract>-<sender>.json.
func defaultStore(sender, contract common.Address) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no --store and no user config directory: %w", err)
	}
	dir = filepath.Join(dir, "uraiden")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	name := fmt.Sprintf("channels-%s-%s.json", strings.ToLower(contract.Hex()[2:10]), strings.ToLower(sender.Hex()[2:10]))
	return filepath.Join(dir, name), nil
}
