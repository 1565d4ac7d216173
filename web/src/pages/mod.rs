//! One module per route (see [`crate::App`]).

mod detail;
mod edit;
mod list;
mod new;
mod not_found;

pub use detail::DetailPage;
pub use edit::EditPage;
pub use list::ListPage;
pub use new::NewPage;
pub use not_found::{NoSuchArticle, NotFoundPage};
