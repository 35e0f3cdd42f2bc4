package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/conclave-im/conclave/node"
)

// Group settings: a group's name and topic, set at creation (POST
// /v1/groups with a CreateGroupRequest body) or changed later (POST
// /v1/groups/{id}/settings with a SettingsRequest), each change decided by
// the group like a membership change.

// CreateGroupRequest is the optional body of POST /v1/groups.
type CreateGroupRequest struct {
	Name  string `json:"name,omitempty"`
	Topic string `json:"topic,omitempty"`
}

// SettingsRequest is the body of POST /v1/groups/{id}/settings: the
// settings to change; an absent field stays as it is, an empty string
// clears it.
type SettingsRequest struct {
	Name  *string `json:"name,omitempty"`
	Topic *string `json:"topic,omitempty"`
}

// readCreateGroup reads the optional body of POST /v1/groups (empty, or a
// CreateGroupRequest) and returns the node options it asks for.
func readCreateGroup(w http.ResponseWriter, r *http.Request) ([]node.GroupOption, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "body: "+err.Error())
		return nil, false
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil, true
	}
	var req CreateGroupRequest
	r.Body = io.NopCloser(bytes.NewReader(b))
	if !readJSON(w, r, &req) {
		return nil, false
	}
	var opts []node.GroupOption
	if req.Name != "" {
		opts = append(opts, node.WithName(req.Name))
	}
	if req.Topic != "" {
		opts = append(opts, node.WithTopic(req.Topic))
	}
	return opts, true
}

// groupSettings changes a group's name and/or topic; it answers with the
// group once the change is decided.
func (s *Server) groupSettings(w http.ResponseWriter, r *http.Request) {
	gid, ok := s.groupID(w, r, false)
	if !ok {
		return
	}
	var req SettingsRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Name == nil && req.Topic == nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "give a name, a topic or both")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.node.UpdateGroupSettings(ctx, gid, node.SettingsUpdate{Name: req.Name, Topic: req.Topic}); err != nil {
		writeNodeError(w, err)
		return
	}
	s.writeGroup(w, r, gid)
}

// CreateNamedGroup creates a group with a name and topic (either may be
// empty) and returns its ID.
func (c *Client) CreateNamedGroup(ctx context.Context, name, topic string) (string, error) {
	var out CreatedGroup
	return out.ID, c.do(ctx, "POST", "/v1/groups", CreateGroupRequest{Name: name, Topic: topic}, &out)
}

// UpdateGroupSettings changes a group's name and/or topic and returns the
// group once the change is decided; group may be a unique prefix.
func (c *Client) UpdateGroupSettings(ctx context.Context, group string, req SettingsRequest) (Group, error) {
	var g Group
	return g, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(group)+"/settings", req, &g)
}
