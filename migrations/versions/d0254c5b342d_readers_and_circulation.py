"""readers and circulation: readers, loan rules, closed days, loans, holds, class loans,
reading-room use, year rollover; seeds reader categories and the city's default loan rules

Revision ID: d0254c5b342d
Revises: 56edbf239ff4
Create Date: 2026-11-25 06:02:17.269011

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd0254c5b342d'
down_revision = '56edbf239ff4'
branch_labels = None
depends_on = None


def upgrade():
    # Loans, holds and reading-room uses point at (school_id, id) of copy: unique first.
    with op.batch_alter_table('copy', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_copy_school_id', ['school_id', 'id'])

    op.create_table('reader_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('student', 'teacher', 'staff', name='ck_readerkind', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('circulation_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('closed_on_sundays', sa.Boolean(), nullable=False),
    sa.Column('closed_on_saturdays', sa.Boolean(), nullable=False),
    sa.Column('hold_days', sa.Integer(), nullable=False),
    sa.Column('fines_enabled', sa.Boolean(), nullable=False),
    sa.Column('fine_per_day', sa.Numeric(precision=12, scale=0), nullable=False),
    sa.Column('undo_minutes', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', name='uq_circulation_settings_school')
    )
    with op.batch_alter_table('circulation_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_circulation_settings_school_id'), ['school_id'], unique=False)

    op.create_table('closed_day',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'day', name='uq_closed_day')
    )
    with op.batch_alter_table('closed_day', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_closed_day_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_closed_day_school_id'), ['school_id'], unique=False)

    op.create_table('loan_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('document_type_id', sa.Integer(), nullable=True),
    sa.Column('loan_days', sa.Integer(), nullable=True),
    sa.Column('until_year_end', sa.Boolean(), nullable=False),
    sa.Column('max_items', sa.Integer(), nullable=False),
    sa.Column('renewals', sa.Integer(), nullable=False),
    sa.Column('renewal_days', sa.Integer(), nullable=True),
    sa.Column('reading_room_only', sa.Boolean(), nullable=False),
    sa.CheckConstraint('loan_days IS NULL OR loan_days > 0', name='ck_loan_rule_days'),
    sa.CheckConstraint('max_items >= 0 AND renewals >= 0', name='ck_loan_rule_limits'),
    sa.ForeignKeyConstraint(['category_id'], ['reader_category.id'], ),
    sa.ForeignKeyConstraint(['document_type_id'], ['document_type.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('loan_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_rule_school_id'), ['school_id'], unique=False)

    op.create_table('reader_import_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', name='uq_reader_import_mapping_school')
    )
    with op.batch_alter_table('reader_import_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reader_import_mapping_school_id'), ['school_id'], unique=False)

    op.create_table('year_rollover',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('from_year_id', sa.Integer(), nullable=False),
    sa.Column('to_year_id', sa.Integer(), nullable=False),
    sa.Column('class_mapping', sa.JSON(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('applied', 'confirmed', 'undone', name='ck_rolloverstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('readers_promoted', sa.Integer(), nullable=False),
    sa.Column('readers_graduated', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['from_year_id'], ['school_year.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['to_year_id'], ['school_year.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('year_rollover', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_year_rollover_school_id'), ['school_id'], unique=False)

    op.create_table('reader',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.Column('family_name', sa.String(length=120), nullable=False),
    sa.Column('given_name', sa.String(length=60), nullable=False),
    sa.Column('class_name', sa.String(length=30), nullable=True),
    sa.Column('grade', sa.Integer(), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('gender', sa.Enum('female', 'male', name='ck_gender', native_enum=False, create_constraint=True, length=30), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('email', sa.String(length=120), nullable=True),
    sa.Column('photo', sa.LargeBinary(), nullable=True),
    sa.Column('card_number', sa.String(length=40), nullable=False),
    sa.Column('barcode', sa.String(length=40), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('active', 'suspended', 'graduated', 'left', name='ck_readerstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['reader_category.id'], ),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'barcode', name='uq_reader_barcode'),
    sa.UniqueConstraint('school_id', 'card_number', name='uq_reader_card'),
    sa.UniqueConstraint('school_id', 'id', name='uq_reader_school_id')
    )
    with op.batch_alter_table('reader', schema=None) as batch_op:
        batch_op.create_index('ix_reader_school_class', ['school_id', 'class_name'], unique=False)
        batch_op.create_index('ix_reader_school_code', ['school_id', 'code'], unique=False)
        batch_op.create_index(batch_op.f('ix_reader_school_id'), ['school_id'], unique=False)

    op.create_table('class_loan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('class_name', sa.String(length=30), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('per_student', sa.Boolean(), nullable=False),
    sa.Column('loaned_at', sa.DateTime(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'holder_id'], ['reader.school_id', 'reader.id'], name='fk_class_loan_holder'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school_id', 'id', name='uq_class_loan_school_id')
    )
    with op.batch_alter_table('class_loan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_loan_school_id'), ['school_id'], unique=False)

    op.create_table('hold',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('copy_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('waiting', 'ready', 'fulfilled', 'cancelled', 'expired', name='ck_holdstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('placed_at', sa.DateTime(), nullable=False),
    sa.Column('ready_on', sa.Date(), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_hold_copy'),
    sa.ForeignKeyConstraint(['school_id', 'reader_id'], ['reader.school_id', 'reader.id'], name='fk_hold_reader'),
    sa.ForeignKeyConstraint(['school_id', 'record_id'], ['record.school_id', 'record.id'], name='fk_hold_record'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.create_index('ix_hold_reader_status', ['reader_id', 'status'], unique=False)
        batch_op.create_index('ix_hold_record_status', ['record_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_hold_school_id'), ['school_id'], unique=False)

    op.create_table('reading_room_use',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('used_on', sa.Date(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=True),
    sa.Column('copy_id', sa.Integer(), nullable=True),
    sa.Column('class_name', sa.String(length=30), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('visits > 0', name='ck_reading_room_visits'),
    sa.ForeignKeyConstraint(['category_id'], ['reader_category.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_reading_room_copy'),
    sa.ForeignKeyConstraint(['school_id', 'reader_id'], ['reader.school_id', 'reader.id'], name='fk_reading_room_reader'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reading_room_use', schema=None) as batch_op:
        batch_op.create_index('ix_reading_room_school_day', ['school_id', 'used_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_reading_room_use_school_id'), ['school_id'], unique=False)

    op.create_table('loan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('copy_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('class_loan_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('home', 'class_set', name='ck_loankind', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('status', sa.Enum('active', 'returned', 'lost', 'cancelled', name='ck_loanstatus', native_enum=False, create_constraint=True, length=30), nullable=False),
    sa.Column('class_name', sa.String(length=30), nullable=True),
    sa.Column('loaned_at', sa.DateTime(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('returned_at', sa.DateTime(), nullable=True),
    sa.Column('renewals', sa.Integer(), nullable=False),
    sa.Column('loaned_by_id', sa.Integer(), nullable=True),
    sa.Column('returned_by_id', sa.Integer(), nullable=True),
    sa.Column('fine', sa.Numeric(precision=12, scale=0), nullable=True),
    sa.Column('compensation', sa.Enum('replacement', 'amount', 'waived', name='ck_compensation', native_enum=False, create_constraint=True, length=30), nullable=True),
    sa.Column('compensation_amount', sa.Numeric(precision=12, scale=0), nullable=True),
    sa.Column('compensation_settled_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['loaned_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['returned_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['school_id', 'class_loan_id'], ['class_loan.school_id', 'class_loan.id'], name='fk_loan_class_loan'),
    sa.ForeignKeyConstraint(['school_id', 'copy_id'], ['copy.school_id', 'copy.id'], name='fk_loan_copy'),
    sa.ForeignKeyConstraint(['school_id', 'reader_id'], ['reader.school_id', 'reader.id'], name='fk_loan_reader'),
    sa.ForeignKeyConstraint(['school_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('loan', schema=None) as batch_op:
        batch_op.create_index('ix_loan_reader_status', ['reader_id', 'status'], unique=False)
        batch_op.create_index('ix_loan_school_due', ['school_id', 'status', 'due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_loan_school_id'), ['school_id'], unique=False)
        batch_op.create_index('ix_loan_school_loaned_at', ['school_id', 'loaned_at'], unique=False)
        batch_op.create_index('uq_loan_open_copy', ['copy_id'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    # ### end Alembic commands ###
    seed_reference_data()


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('copy', schema=None) as batch_op:
        batch_op.drop_constraint('uq_copy_school_id', type_='unique')

    with op.batch_alter_table('loan', schema=None) as batch_op:
        batch_op.drop_index('uq_loan_open_copy', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_loan_school_loaned_at')
        batch_op.drop_index(batch_op.f('ix_loan_school_id'))
        batch_op.drop_index('ix_loan_school_due')
        batch_op.drop_index('ix_loan_reader_status')

    op.drop_table('loan')
    with op.batch_alter_table('reading_room_use', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reading_room_use_school_id'))
        batch_op.drop_index('ix_reading_room_school_day')

    op.drop_table('reading_room_use')
    with op.batch_alter_table('hold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hold_school_id'))
        batch_op.drop_index('ix_hold_record_status')
        batch_op.drop_index('ix_hold_reader_status')

    op.drop_table('hold')
    with op.batch_alter_table('class_loan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_loan_school_id'))

    op.drop_table('class_loan')
    with op.batch_alter_table('reader', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reader_school_id'))
        batch_op.drop_index('ix_reader_school_code')
        batch_op.drop_index('ix_reader_school_class')

    op.drop_table('reader')
    with op.batch_alter_table('year_rollover', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_year_rollover_school_id'))

    op.drop_table('year_rollover')
    with op.batch_alter_table('reader_import_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reader_import_mapping_school_id'))

    op.drop_table('reader_import_mapping')
    with op.batch_alter_table('loan_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_rule_school_id'))

    op.drop_table('loan_rule')
    with op.batch_alter_table('closed_day', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closed_day_school_id'))
        batch_op.drop_index(batch_op.f('ix_closed_day_day'))

    op.drop_table('closed_day')
    with op.batch_alter_table('circulation_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_circulation_settings_school_id'))

    op.drop_table('circulation_settings')
    op.drop_table('reader_category')
    # ### end Alembic commands ###


READER_CATEGORIES = [  # id, code, name, kind
    (1, "HS", "Học sinh", "student"),
    (2, "GV", "Giáo viên", "teacher"),
    (3, "CBNV", "Cán bộ, nhân viên", "staff"),
]
# The department's defaults for the city (school_id NULL); each school may add its own.
# category code, document type code, days, until year end, max items, renewals, renewal days,
# reading room only. A typical school rule: students 3 books for 10 days, renewable
# (registers.md §5); textbooks until the end of the school year; periodicals in the library.
DEFAULT_RULES = [
    (None, None, 14, False, 3, 1, 7, False),
    ("HS", None, 10, False, 3, 1, 7, False),
    ("GV", None, 30, False, 10, 2, 14, False),
    ("CBNV", None, 30, False, 5, 2, 14, False),
    (None, "SGK", None, True, 20, 0, None, False),
    (None, "BC", None, False, 0, 0, None, True),
]


def seed_reference_data():
    categories = sa.table("reader_category", sa.column("id", sa.Integer),
                          sa.column("code", sa.String), sa.column("name", sa.String),
                          sa.column("kind", sa.String))
    op.bulk_insert(categories, [{"id": i, "code": c, "name": n, "kind": k}
                                for i, c, n, k in READER_CATEGORIES])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('reader_category_id_seq', "
                   "(SELECT max(id) FROM reader_category))")
    for cat, doc, days, year_end, max_items, renewals, renewal_days, room in DEFAULT_RULES:
        op.get_bind().execute(sa.text(
            "INSERT INTO loan_rule (school_id, category_id, document_type_id, loan_days, "
            "until_year_end, max_items, renewals, renewal_days, reading_room_only) VALUES "
            "(NULL, (SELECT id FROM reader_category WHERE code = :cat), "
            "(SELECT id FROM document_type WHERE code = :doc), :days, :year_end, :max_items, "
            ":renewals, :renewal_days, :room)"),
            dict(cat=cat, doc=doc, days=days, year_end=year_end, max_items=max_items,
                 renewals=renewals, renewal_days=renewal_days, room=room))
