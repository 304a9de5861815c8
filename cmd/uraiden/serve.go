package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/uraiden/uraiden/internal/server"
)

func newServeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Envoy ext_authz service that charges for HTTP requests",
		Long: `Serves envoy.service.auth.v3.Authorization/Check on authz.listen (default
127.0.0.1:9001), with the standard gRPC health service and server reflection. Each request is
priced by the price table (pricing.file); a priced request must carry a µRaiden balance proof
in RDN-* headers (or the paywall's cookies), which is verified, stored durably in the ledger
(ledger.dir), and only then allowed.

An HTTP admin server on admin.listen (default 127.0.0.1:9002; empty: none) serves
µRaiden's channel API under admin.path_prefix (default: authz.gateway_path, /api/1):
GET <prefix>/stats, GET <prefix>/channels[/<sender>[/<open_block>]] and the cooperative
close DELETE <prefix>/channels/<sender>/<open_block>; plus /healthz, /readyz, /metrics
(Prometheus) and, with admin.pprof, /debug/pprof/. Only what a paying client needs is
public: a single channel's GET (without signatures), the cooperative close, which must
carry the sender's balance proof, and the discovery document of what is for sale
(<prefix>/prices and /.well-known/uraiden), its schema and the OpenAPI document
(<prefix>/openapi.yaml, .json). Everything else needs the operator token (admin.token,
admin.token_file or URAIDEN_ADMIN_TOKEN) as "Authorization: Bearer <token>", and is
refused when none is configured.

authz.tls and admin.tls serve TLS with a certificate and key (re-read when they change)
and, with client_ca_file, require client certificates that CA signed (mTLS). A CheckRequest
over authz.max_request_bytes is refused with RESOURCE_EXHAUSTED.

Prices stated in tokens (price: 0.005 token) are converted with the token's decimals(),
read from the chain at start.

Without chain.rpc_url it runs on the embedded dev chain (see 'uraiden devchain'), whose
ledger is new at every start; there a missing default prices.yaml means the built-in
example table until the file appears.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := server.Start(ctx, a.cfg, a.log)
			if err != nil {
				return err
			}
			if s.DevChain != nil {
				printDevChain(cmd.OutOrStdout(), s.DevChain)
			}
			if s.Gateway != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "Gateway (Envoy stand-in): %s  e.g. uraiden get --dev-account 1 %s/echofix/foo\n", s.Gateway.URL(), s.Gateway.URL())
			}
			<-ctx.Done()
			a.log.Info("shutting down")
			return s.Close()
		},
	}
	flags := cmd.Flags()
	flags.String("listen", "127.0.0.1:9001", "gRPC listen address of the ext_authz service")
	flags.String("prices", "prices.yaml", "price table file")
	flags.String("ledger-dir", "data", "ledger data directory")
	flags.String("rpc", "", "Ethereum node URL (empty: the embedded dev chain)")
	flags.String("admin-listen", "127.0.0.1:9002", "HTTP listen address of the admin API, probes and metrics (empty: none)")
	flags.String("gateway", "auto", "listen address of the local HTTP gateway, an Envoy stand-in (auto: 127.0.0.1:8080 with the embedded dev chain; empty: none)")
	flags.String("upstream", "", "URL the gateway sends paid requests to (empty: the built-in demo upstream)")
	flags.Bool("pprof", false, "serve pprof on the admin server under /debug/pprof/ (operator only)")
	a.bind(flags, "authz.listen", "listen")
	a.bind(flags, "pricing.file", "prices")
	a.bind(flags, "ledger.dir", "ledger-dir")
	a.bind(flags, "chain.rpc_url", "rpc")
	a.bind(flags, "admin.listen", "admin-listen")
	a.bind(flags, "admin.pprof", "pprof")
	a.bind(flags, "gateway.listen", "gateway")
	a.bind(flags, "gateway.upstream", "upstream")
	return cmd
}
