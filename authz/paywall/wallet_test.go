package paywall_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// injectedProvider is the EIP-1193 provider the test puts into every page before its
// scripts run, as a wallet extension does. It hands each request to the Go wallet, exposed
// to the page as rdnWallet, and throws its errors as a wallet does: with the JSON-RPC code
// and data (a revert's reason travels in data). It also reports Content-Security-Policy
// violations, which the test counts as failures.
const injectedProvider = `window.ethereum = {
  isUraidenTestWallet: true,
  async request({ method, params }) {
    const answer = await window.rdnWallet({ method, params: params || [] });
    if (answer.error) {
      throw Object.assign(new Error(answer.error.message), answer.error);
    }
    return answer.result;
  },
  on() {},
  removeListener() {},
};
document.addEventListener('securitypolicyviolation', (e) =>
  window.rdnViolation(e.violatedDirective + ' ' + e.blockedURI));`

// testWallet answers the page's wallet requests as a wallet with one dev key would: it
// shares the account once asked, signs typed data (legacy v1 and EIP-712 v4), personal
// messages and transactions with the key, and passes reads to the node. It records what it
// signed.
type testWallet struct {
	key     *ecdsa.PrivateKey
	account common.Address
	chainID *big.Int
	node    *ethclient.Client
	// lacks are the signing methods this wallet does not have, each with the error code it
	// answers them with: 4200 (EIP-1193's unsupported method), as an extension does, or
	// -32601 (method not found), as one that passes unknown calls to its node does.
	lacks map[string]int

	mu        sync.Mutex
	connected bool
	signed    []typedMessage       // every legacy typed-data message signed, in order
	signedV4  []apitypes.TypedData // every EIP-712 message signed, in order
	asked     map[string]int       // how often each method was called
	messages  []string             // every personal message signed, in order
	sent      []string             // the selector of every transaction sent, in order
}

type walletRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
}

// walletError is an EIP-1193 error.
type walletError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// walletAnswer is what the exposed function returns; the injected provider turns an error
// into a thrown one.
type walletAnswer struct {
	Result any          `json:"result"`
	Error  *walletError `json:"error,omitempty"`
}

func (w *testWallet) serve(ctx context.Context, req walletRequest) (walletAnswer, error) {
	result, err := w.handle(ctx, req)
	return walletAnswer{Result: result, Error: err}, nil
}

// nodeError keeps the code and data of the node's JSON-RPC error, as a wallet passes them on.
func nodeError(err error) *walletError {
	we := &walletError{Code: -32603, Message: err.Error()}
	var coded rpc.Error
	if errors.As(err, &coded) {
		we.Code = coded.ErrorCode()
	}
	var withData rpc.DataError
	if errors.As(err, &withData) {
		we.Data = withData.ErrorData()
	}
	return we
}

func (w *testWallet) handle(ctx context.Context, req walletRequest) (any, *walletError) {
	w.mu.Lock()
	if w.asked == nil {
		w.asked = map[string]int{}
	}
	w.asked[req.Method]++
	w.mu.Unlock()
	if code, ok := w.lacks[req.Method]; ok {
		return nil, &walletError{Code: code, Message: "the method " + req.Method + " is not supported"}
	}
	switch req.Method {
	case "eth_accounts":
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.connected {
			return []string{}, nil
		}
		return []string{w.account.Hex()}, nil
	case "eth_requestAccounts":
		w.mu.Lock()
		w.connected = true
		w.mu.Unlock()
		return []string{w.account.Hex()}, nil
	case "eth_chainId":
		return hexutil.EncodeBig(w.chainID), nil
	case "eth_signTypedData":
		return w.signTypedData(req.Params)
	case "eth_signTypedData_v4":
		return w.signTypedDataV4(req.Params)
	case "personal_sign":
		return w.personalSign(req.Params)
	case "eth_sendTransaction":
		return w.sendTransaction(ctx, req.Params)
	case "wallet_switchEthereumChain":
		return nil, &walletError{Code: 4902, Message: "the test wallet knows one chain"}
	default:
		var result json.RawMessage
		params := make([]any, len(req.Params))
		for i, p := range req.Params {
			params[i] = p
		}
		if err := w.node.Client().CallContext(ctx, &result, req.Method, params...); err != nil {
			return nil, nodeError(err)
		}
		return result, nil
	}
}

// typedMessage is a legacy (v1) eth_signTypedData message: a list of typed values.
type typedMessage []struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// hash is MetaMask's legacy typed-data hash: keccak256(keccak256(types and names, packed) ‖
// keccak256(values, packed)), the construction of docs/protocol.md §2.
func (m typedMessage) hash() ([]byte, error) {
	var schema, values bytes.Buffer
	for _, f := range m {
		schema.WriteString(f.Type + " " + f.Name)
		text := fmt.Sprint(f.Value)
		switch {
		case f.Type == "string":
			values.WriteString(text)
		case f.Type == "address":
			if !common.IsHexAddress(text) {
				return nil, fmt.Errorf("%s: not an address: %q", f.Name, text)
			}
			values.Write(common.HexToAddress(text).Bytes())
		case f.Type == "uint32" || f.Type == "uint192":
			bits, _ := strconv.Atoi(f.Type[len("uint"):])
			n, ok := new(big.Int).SetString(text, 0)
			if !ok || n.Sign() < 0 || n.BitLen() > bits {
				return nil, fmt.Errorf("%s: not a %s: %q", f.Name, f.Type, text)
			}
			values.Write(n.FillBytes(make([]byte, bits/8)))
		default:
			return nil, fmt.Errorf("%s: type %s is not in a balance proof", f.Name, f.Type)
		}
	}
	return crypto.Keccak256(crypto.Keccak256(schema.Bytes()), crypto.Keccak256(values.Bytes())), nil
}

func (w *testWallet) signTypedData(params []json.RawMessage) (any, *walletError) {
	var msg typedMessage
	var account common.Address
	if len(params) != 2 || json.Unmarshal(params[0], &msg) != nil || json.Unmarshal(params[1], &account) != nil {
		return nil, &walletError{Code: -32602, Message: "eth_signTypedData takes [typed data, account]"}
	}
	if account != w.account {
		return nil, &walletError{Code: 4100, Message: "not this wallet's account"}
	}
	hash, err := msg.hash()
	if err != nil {
		return nil, &walletError{Code: -32602, Message: err.Error()}
	}
	sig, werr := w.sign(hash)
	if werr == nil {
		w.mu.Lock()
		w.signed = append(w.signed, msg)
		w.mu.Unlock()
	}
	return sig, werr
}

// sign signs a digest as a wallet answers: hex, with v 27 or 28.
func (w *testWallet) sign(hash []byte) (any, *walletError) {
	sig, err := crypto.Sign(hash, w.key)
	if err != nil {
		return nil, &walletError{Code: -32603, Message: err.Error()}
	}
	sig[64] += 27
	return hexutil.Encode(sig), nil
}

// signTypedDataV4 signs EIP-712 typed data, given as [account, JSON], hashed by
// go-ethereum's implementation: the page builds the message with viem, the server checks it
// with rdn, and the wallet is a third implementation.
func (w *testWallet) signTypedDataV4(params []json.RawMessage) (any, *walletError) {
	var account common.Address
	var text string
	var data apitypes.TypedData
	if len(params) != 2 || json.Unmarshal(params[0], &account) != nil || json.Unmarshal(params[1], &text) != nil ||
		json.Unmarshal([]byte(text), &data) != nil {
		return nil, &walletError{Code: -32602, Message: "eth_signTypedData_v4 takes [account, typed data as JSON]"}
	}
	if account != w.account {
		return nil, &walletError{Code: 4100, Message: "not this wallet's account"}
	}
	if data.Domain.ChainId == nil || (*big.Int)(data.Domain.ChainId).Cmp(w.chainID) != 0 {
		return nil, &walletError{Code: -32602, Message: fmt.Sprintf("typed data for chain %v, the wallet is on %v", data.Domain.ChainId, w.chainID)}
	}
	hash, _, err := apitypes.TypedDataAndHash(data)
	if err != nil {
		return nil, &walletError{Code: -32602, Message: err.Error()}
	}
	sig, werr := w.sign(hash)
	if werr == nil {
		w.mu.Lock()
		w.signedV4 = append(w.signedV4, data)
		w.mu.Unlock()
	}
	return sig, werr
}

func (w *testWallet) signedTyped() []apitypes.TypedData {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]apitypes.TypedData(nil), w.signedV4...)
}

func (w *testWallet) calls(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[method]
}

// personalSign signs an EIP-191 personal message, given as hex, as a wallet does.
func (w *testWallet) personalSign(params []json.RawMessage) (any, *walletError) {
	var message hexutil.Bytes
	var account common.Address
	if len(params) != 2 || json.Unmarshal(params[0], &message) != nil || json.Unmarshal(params[1], &account) != nil {
		return nil, &walletError{Code: -32602, Message: "personal_sign takes [hex message, account]"}
	}
	if account != w.account {
		return nil, &walletError{Code: 4100, Message: "not this wallet's account"}
	}
	sig, err := crypto.Sign(accounts.TextHash(message), w.key)
	if err != nil {
		return nil, &walletError{Code: -32603, Message: err.Error()}
	}
	sig[64] += 27
	w.mu.Lock()
	w.messages = append(w.messages, string(message))
	w.mu.Unlock()
	return hexutil.Encode(sig), nil
}

func (w *testWallet) signedTexts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.messages...)
}

// sendTransaction fills in what a wallet does (nonce, gas, fees), signs and sends.
func (w *testWallet) sendTransaction(ctx context.Context, params []json.RawMessage) (any, *walletError) {
	var tx struct {
		From  common.Address  `json:"from"`
		To    *common.Address `json:"to"`
		Data  hexutil.Bytes   `json:"data"`
		Value *hexutil.Big    `json:"value"`
	}
	if len(params) != 1 || json.Unmarshal(params[0], &tx) != nil || tx.To == nil {
		return nil, &walletError{Code: -32602, Message: "eth_sendTransaction takes one call to a contract"}
	}
	if tx.From != w.account {
		return nil, &walletError{Code: 4100, Message: "not this wallet's account"}
	}
	hash, err := w.send(ctx, *tx.To, tx.Data, (*big.Int)(tx.Value))
	if err != nil {
		return nil, nodeError(err)
	}
	w.mu.Lock()
	if len(tx.Data) >= 4 {
		w.sent = append(w.sent, hexutil.Encode(tx.Data[:4]))
	}
	w.mu.Unlock()
	return hash.Hex(), nil
}

func (w *testWallet) send(ctx context.Context, to common.Address, data []byte, value *big.Int) (common.Hash, error) {
	if value == nil {
		value = new(big.Int)
	}
	nonce, err := w.node.PendingNonceAt(ctx, w.account)
	if err != nil {
		return common.Hash{}, err
	}
	gas, err := w.node.EstimateGas(ctx, ethereum.CallMsg{From: w.account, To: &to, Data: data, Value: value})
	if err != nil {
		return common.Hash{}, fmt.Errorf("gas estimation: %w", err)
	}
	tip, err := w.node.SuggestGasTipCap(ctx)
	if err != nil {
		return common.Hash{}, err
	}
	head, err := w.node.HeaderByNumber(ctx, nil)
	if err != nil {
		return common.Hash{}, err
	}
	if head.BaseFee == nil {
		return common.Hash{}, errors.New("the node's head has no base fee")
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	signed, err := types.SignNewTx(w.key, types.LatestSignerForChainID(w.chainID), &types.DynamicFeeTx{
		ChainID: w.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas * 5 / 4,
		To: &to, Value: value, Data: data,
	})
	if err != nil {
		return common.Hash{}, err
	}
	return signed.Hash(), w.node.SendTransaction(ctx, signed)
}

func (w *testWallet) signedMessages() []typedMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]typedMessage(nil), w.signed...)
}

func (w *testWallet) sentSelectors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.sent...)
}
