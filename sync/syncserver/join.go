package syncserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/offline-loyalty/terminal/sync/syncproto"
)

// maxJoinBody bounds an unauthenticated join request.
const maxJoinBody = 4 << 10

var errTooMany = errors.New("too many join attempts from this address: try again later")

// serveJoin exchanges a join code for a terminal's identity (POST /v1/join).
func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.joins.allow(remoteHost(r), time.Now()); !ok {
		s.metrics.joins.WithLabelValues("throttled").Inc()
		throttled(w, wait)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJoinBody+1))
	if err != nil {
		s.refuseJoin(w, http.StatusBadRequest, "invalid", fmt.Errorf("invalid request: %v", err))
		return
	}
	if len(body) > maxJoinBody {
		s.refuseJoin(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Errorf("invalid request: a join request is at most %d bytes", maxJoinBody))
		return
	}
	var req syncproto.JoinRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.refuseJoin(w, http.StatusBadRequest, "invalid", fmt.Errorf("invalid request: %v", err))
		return
	}
	if dec.More() {
		s.refuseJoin(w, http.StatusBadRequest, "invalid", errors.New("invalid request: trailing data"))
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
		s.refuseJoin(w, status, code, err)
		return
	}
	s.metrics.joins.WithLabelValues("ok").Inc()
	s.log.Info("terminal joined", "terminal", resp.Terminal)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// refuseJoin answers a join request with a one-line JSON error and counts it.
func (s *Server) refuseJoin(w http.ResponseWriter, status int, code string, err error) {
	s.metrics.joins.WithLabelValues(code).Inc()
	writeError(w, status, code, err)
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
