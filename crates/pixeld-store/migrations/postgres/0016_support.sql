-- Support requests and their messages. A request goes with the account that opened it; an
-- operator's message stays in the thread when the operator's account is deleted (author_id is
-- then NULL). The sweeper deletes requests quiet for longer than the `support` class window.

CREATE TABLE support_tickets (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    category    TEXT NOT NULL CHECK (category IN ('general', 'billing', 'technical', 'privacy')),
    status      TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    closed_at   TIMESTAMPTZ
);
CREATE INDEX support_tickets_user ON support_tickets (user_id, id);
CREATE INDEX support_tickets_status ON support_tickets (status, id);
CREATE INDEX support_tickets_updated ON support_tickets (updated_at);

CREATE TABLE support_messages (
    id          UUID PRIMARY KEY,
    ticket_id   UUID NOT NULL REFERENCES support_tickets (id) ON DELETE CASCADE,
    author      TEXT NOT NULL CHECK (author IN ('user', 'operator')),
    author_id   UUID REFERENCES users (id) ON DELETE SET NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX support_messages_ticket ON support_messages (ticket_id, id);
CREATE INDEX support_messages_author ON support_messages (author_id);
