package syncserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// maxJoinBody bounds an unauthenticated join request.
const maxJoinBody = 4 << 10

// serveJoin exchanges a join code for a terminal's identity (POST /v1/join).
func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) {
	var req syncproto.JoinRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJoinBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Errorf("invalid request: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeWait)
	defer cancel()
	resp, err := s.hq.Join(ctx, req)
	if err != nil {
		s.log.Info("join refused", "remote", r.RemoteAddr, "err", err)
		status, code := http.StatusInternalServerError, "internal"
		switch codeOf(err) {
		case "invalid":
			status, code = http.StatusBadRequest, "invalid"
		case "join_code":
			status, code = http.StatusForbidden, "join_code"
		}
		writeError(w, status, code, err)
		return
	}
	s.log.Info("terminal joined", "terminal", resp.Terminal)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// writeError answers with a one-line JSON error.
func writeError(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{err.Error(), code})
}
