package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/uraiden/uraiden/contracts"
)

// statsBody is GET <prefix>/stats: µRaiden's fields, then ours. Amounts are decimal
// strings of token base units; sums are over channels not yet settled unless named so.
type statsBody struct {
	DepositSum      string          `json:"deposit_sum"`
	OpenChannels    int64           `json:"open_channels"`
	PendingChannels int64           `json:"pending_channels"`
	BalanceSum      string          `json:"balance_sum"`
	UniqueSenders   int64           `json:"unique_senders"`
	LiquidBalance   *string         `json:"liquid_balance"`
	TokenAddress    string          `json:"token_address"`
	ContractAddress string          `json:"contract_address"`
	ReceiverAddress string          `json:"receiver_address"`
	ManagerABI      json.RawMessage `json:"manager_abi"`
	TokenABI        json.RawMessage `json:"token_abi"`
	SyncBlock       uint64          `json:"sync_block"`

	UnconfirmedDepositSum string  `json:"unconfirmed_deposit_sum"`
	ChargedSum            string  `json:"charged_sum"`
	WithdrawnSum          string  `json:"withdrawn_sum"`
	SettledChannels       int64   `json:"settled_channels"`
	SettledSum            string  `json:"settled_sum"`
	ConfirmedBlock        uint64  `json:"confirmed_block"`
	ChainHead             *uint64 `json:"chain_head"`
	SyncLag               *uint64 `json:"sync_lag"`
	ChainError            string  `json:"chain_error,omitempty"`
}

// stats answers from the ledger's counters, which cost nothing to read, and the cached
// chain view, which calls the node at most once per its ttl.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Ledger.Stats()
	sync := s.cfg.Ledger.Sync()
	confirmed := s.cfg.Ledger.ConfirmedHeight()
	body := statsBody{
		DepositSum:      st.DepositSum.String(),
		OpenChannels:    st.OpenChannels,
		PendingChannels: st.ClosingChannels,
		BalanceSum:      st.BalanceSum.String(),
		UniqueSenders:   st.UniqueSenders,
		TokenAddress:    s.cfg.TokenAddress.Hex(),
		ContractAddress: s.cfg.Contract.Hex(),
		ReceiverAddress: s.cfg.Receiver.Hex(),
		ManagerABI:      contracts.ChannelsArtifact.ABI,
		TokenABI:        contracts.TokenArtifact.ABI,
		SyncBlock:       sync.Cursor,

		UnconfirmedDepositSum: st.UnconfirmedDeposits(confirmed).String(),
		ChargedSum:            st.ChargedSum.String(),
		WithdrawnSum:          st.WithdrawnSum.String(),
		SettledChannels:       st.SettledChannels,
		SettledSum:            st.SettledSum.String(),
		ConfirmedBlock:        confirmed,
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	chain := s.cfg.Chain.Get(ctx)
	if chain.Known {
		liquid := chain.Liquid.String()
		lag := chain.Head - min(chain.Head, sync.Cursor)
		body.LiquidBalance, body.ChainHead, body.SyncLag = &liquid, &chain.Head, &lag
	}
	if chain.Err != nil {
		body.ChainError = chain.Err.Error()
	}
	writeJSON(w, http.StatusOK, body)
}
