package gateway

import (
	"net/http"
)

// DemoUpstream is the service the example price table (prices.yaml) sells: /echofix/<param>
// and /echodyn/<param> answer param, which costs 5 and len(param) there.
func DemoUpstream() http.Handler {
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(r.PathValue("param")))
	}
	mux.HandleFunc("/echofix/{param}", echo)
	mux.HandleFunc("/echodyn/{param}", echo)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return mux
}
