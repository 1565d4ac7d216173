//! Pieces shared by several pages.

mod article_form;
mod error_panel;
mod live_indicator;
mod local_time;
mod pagination;
mod sign_in;
mod tag_list;

pub use article_form::ArticleForm;
pub use error_panel::ErrorPanel;
pub use live_indicator::LiveIndicator;
pub use local_time::LocalTime;
pub use pagination::Pagination;
pub use sign_in::SignInBox;
pub use tag_list::TagList;
