//! The catalog's tables. Definitions are stored as JSON text (the domain's
//! serde form, the same as the export document), one row per version.

/// One indicator version.
pub mod indicator_version {
    use sea_orm::entity::prelude::*;

    /// A row of `catalog_indicator_versions`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_indicator_versions")]
    pub struct Model {
        /// The tenant.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        /// The indicator key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// The version number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// draft, active or retired.
        pub state: String,
        /// The definition as JSON.
        #[sea_orm(column_type = "Text")]
        pub definition: String,
        /// When the version was created.
        pub created_at: DateTimeUtc,
        /// When it last changed.
        pub updated_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One template version.
pub mod template_version {
    use sea_orm::entity::prelude::*;

    /// A row of `catalog_template_versions`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_template_versions")]
    pub struct Model {
        /// The tenant.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        /// The template key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// The version number.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// draft, active or retired.
        pub state: String,
        /// The definition as JSON.
        #[sea_orm(column_type = "Text")]
        pub definition: String,
        /// When the version was created.
        pub created_at: DateTimeUtc,
        /// When it last changed.
        pub updated_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One business calendar.
pub mod calendar {
    use sea_orm::entity::prelude::*;

    /// A row of `catalog_calendars`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_calendars")]
    pub struct Model {
        /// The tenant.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        /// The calendar key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// The calendar as JSON.
        #[sea_orm(column_type = "Text")]
        pub definition: String,
        /// When it last changed.
        pub updated_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The revision of each tenant's catalog, for optimistic concurrency.
pub mod revision {
    use sea_orm::entity::prelude::*;

    /// A row of `catalog_revisions`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalog_revisions")]
    pub struct Model {
        /// The tenant.
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        /// Grows by one with every committed change to the tenant's catalog.
        pub revision: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
