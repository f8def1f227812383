//! Who may use bakch: the API keys (`apikey.json`, `keys.json`) and their roles, the web password (`webpassword.json`) and
//! the signed web sessions. The files and their rules live here; `api/` and `web/` only ask.

pub mod apikey;
pub mod grant;
pub mod keys;
pub mod password;
pub mod session;
