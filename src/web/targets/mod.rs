//! Targets: the list (sort, search, pages, totals), create and edit forms, the target page with
//! its backups, bulk actions and deletes behind a confirmation.

mod files;
mod form;
mod keys;
mod list;
mod page;
mod preview;

use actix_web::web;

pub use page::BackupRow;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/targets").route(web::get().to(list::list)))
        // Before `/targets/{id}`, so "new" is never taken for an id.
        .service(web::resource("/targets/new").route(web::get().to(form::new_form)).route(web::post().to(form::create)))
        .service(web::resource("/targets/{id}").route(web::get().to(page::view)))
        .service(
            web::resource("/targets/{id}/edit").route(web::get().to(form::edit_form)).route(web::post().to(form::edit)),
        )
        .service(web::resource("/targets/{id}/files").route(web::get().to(files::search)))
        .service(web::resource("/targets/{id}/compare").route(web::get().to(files::compare)))
        .service(web::resource("/targets/{id}/history").route(web::get().to(files::history)))
        .service(web::resource("/targets/{id}/retention-preview").route(web::get().to(preview::fragment)))
        .service(web::resource("/targets/{id}/bulk").route(web::post().to(page::bulk)))
        .service(web::resource("/targets/{id}/keys").route(web::post().to(keys::new_upload_key)))
        .service(
            web::resource("/targets/{id}/delete")
                .route(web::get().to(page::delete_confirm))
                .route(web::post().to(page::delete)),
        );
}
