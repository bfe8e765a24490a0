"""What a plan from the ORM-era databases (tests/fixtures/orm/) to the desired
state (schema/<service>.sql) must change, and nothing else.

``ORM_EXPECTATIONS[service][table]`` lists the columns to remove and to add
in tables that exist on both sides; tables only the desired state has are in
``TABLES_ADDED``; constraints and indexes that come and go with those columns
(or that tenant scoping replaces) are in ``CONSTRAINTS`` and ``INDEXES``;
extensions in ``EXTENSIONS_ADDED``. Everything else in the fixtures matches
the desired state. tests/test_derive.py checks these dicts against real
databases, so they cannot drift from the fixtures.
"""

ORM_EXPECTATIONS: dict[str, dict[str, dict[str, list[str]]]] = {
    "cortex": {
        "tenants": {"removed": ["meta"], "added": []},
        "users": {
            "removed": ["last_login_at", "meta"],
            "added": ["tenant_id", "avatar_url", "bio", "skill_level", "learning_goals", "ai_preferences"],
        },
        "categories": {
            "removed": [
                "creator_id", "updated_by", "approved_by", "deleted_by",
                "approved_at", "deleted_at", "meta", "updated_at",
            ],
            "added": ["tenant_id", "icon", "color", "embedding"],
        },
    },
    "postal": {
        "posts": {
            "removed": [
                "order_no", "meta_title", "meta_description", "keywords", "og_image", "is_public",
                "is_pinned", "archived_at", "updated_by", "version", "updated_at", "deleted_at",
            ],
            "added": ["tenant_id", "content_embedding", "quality_score", "readability_score", "like_count"],
        },
        "post_versions": {"removed": ["summary", "deleted_at"], "added": []},
    },
}

TABLES_ADDED: dict[str, list[str]] = {"cortex": [], "postal": ["tags", "post_tags"]}

EXTENSIONS_ADDED: dict[str, list[str]] = {"cortex": ["vector"], "postal": ["vector"]}

# Constraints by name, per table of ORM_EXPECTATIONS (tables not listed: unchanged).
CONSTRAINTS: dict[str, dict[str, dict[str, list[str]]]] = {
    "cortex": {
        "users": {
            "removed": ["users_email_key", "users_username_key"],
            "added": [
                "users_tenant_id_fkey", "users_tenant_id_email_key", "users_tenant_id_username_key",
                "users_skill_level_check", "users_ai_preferences_check",
            ],
        },
        "categories": {
            "removed": [
                "categories_creator_id_fkey", "categories_updated_by_fkey", "categories_approved_by_fkey",
                "categories_deleted_by_fkey", "categories_slug_key",
            ],
            "added": ["categories_tenant_id_fkey", "categories_tenant_id_slug_key", "categories_color_check"],
        },
    },
    "postal": {
        "posts": {
            "removed": ["posts_slug_key"],
            "added": [
                "posts_tenant_id_slug_key", "posts_quality_score_check",
                "posts_readability_score_check", "posts_like_count_check",
            ],
        },
    },
}

# Indexes that back no constraint, by name, per table (tables not listed: unchanged).
INDEXES: dict[str, dict[str, dict[str, list[str]]]] = {
    "cortex": {
        "categories": {"removed": ["categories_creator_id_idx"], "added": ["categories_embedding_idx"]},
    },
    "postal": {
        "posts": {
            "removed": ["posts_status_published_at_idx"],
            "added": ["posts_tenant_id_status_published_at_idx", "posts_content_embedding_idx"],
        },
    },
}
