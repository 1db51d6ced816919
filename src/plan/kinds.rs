//! The kinds `plan` covers: one line each, the dry run living in the kind's own folder.

use super::Kind;
use crate::reconcile;

/// Every kind `plan` covers.
pub const KINDS: &[Kind] = &[
    reconcile::member::dry_run::KIND,
    reconcile::sandbox::dry_run::KIND,
    reconcile::workspace::dry_run::KIND,
    reconcile::integration::dry_run::KIND,
    reconcile::preview::dry_run::KIND,
];
