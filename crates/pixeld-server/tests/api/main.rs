//! Stories of pixeld's users over real HTTP, each run on SQLite and on PostgreSQL.

mod support;

mod accounts;
mod conventions;
mod credits;
mod describe;
mod fonts;
mod images;
mod orgs;
mod payments;
mod privacy;
mod sessions;
mod support_requests;
mod templates;
mod tokens;
mod two_factor;
mod web;
mod webhooks;
