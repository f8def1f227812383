//! Who may use bakch: the API key (`apikey.json`), the web password (`webpassword.json`) and
//! the signed web sessions. The files and their rules live here; `api/` and `web/` only ask.

pub mod apikey;
pub mod password;
pub mod session;
