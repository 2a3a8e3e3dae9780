"""The boards in Django's admin: who moved them last, who watches, and the moderator's actions."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

from snake import actions, channel, logos
from snake.models import Board

# What an action did, for how many boards: the count picks the language's plural form.
FROZEN = ngettext_lazy("%(count)d board frozen", "%(count)d boards frozen", "count")
UNFROZEN = ngettext_lazy("%(count)d board unfrozen", "%(count)d boards unfrozen", "count")
RESET = ngettext_lazy("%(count)d board reset", "%(count)d boards reset", "count")


class BoardForm(forms.ModelForm):  # type: ignore[type-arg]  # generic in django-stubs only
    upload = forms.FileField(
        required=False,
        label=gettext_lazy("Upload a logo"),
        help_text=format_lazy(
            gettext_lazy(
                "PNG, WebP or JPEG, at most {kb} KB and {px} px a side (never SVG); shown "
                "scaled into the logo's box."
            ),
            kb=logos.MAX_BYTES // 1024,
            px=logos.MAX_SIDE,
        ),
    )
    bundled = forms.BooleanField(required=False, label=gettext_lazy("Use the bundled logo again"))

    class Meta:
        model = Board
        fields = ("title",)

    def clean_upload(self) -> logos.Encoded | None:
        upload = self.cleaned_data.get("upload")
        if upload is None:
            return None
        try:
            return logos.encode(upload)
        except logos.LogoRefused as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # generic in django-stubs only
    list_display = ("slug", "title", "x", "y", "seq", "updated_at", "frozen", "viewers")
    list_filter = ("frozen",)
    search_fields = ("slug",)
    ordering = ("-updated_at",)
    form = BoardForm
    fields = (
        "slug", "title", "logo", "upload", "bundled", "frozen", "x", "y", "seq", "published_seq",
        "updated_at",
    )  # fmt: skip
    readonly_fields = ("slug", "logo", "frozen", "x", "y", "seq", "published_seq", "updated_at")
    actions = ("freeze", "unfreeze", "reset")

    @admin.display(description=gettext_lazy("viewers now"))
    def viewers(self, obj: Board) -> int:
        return channel.watching(obj.slug)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a board comes into being with its first move

    def save_model(self, request: HttpRequest, obj: Board, form: BoardForm, change: bool) -> None:
        # Set through the actions, which publish: every viewer sees the change at once.
        actions.set_title(obj.slug, obj.title)
        encoded = form.cleaned_data.get("upload")
        if encoded is not None:
            actions.set_logo(obj.slug, logos.store(encoded))
        elif form.cleaned_data.get("bundled"):
            actions.set_logo(obj.slug, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._delete(request, list(queryset.values_list("slug", flat=True)))

    def delete_model(self, request: HttpRequest, obj: Board) -> None:
        self._delete(request, [obj.slug])

    def _delete(self, request: HttpRequest, slugs: list[str]) -> None:
        _, kept = actions.delete(slugs, channel.watching)
        if kept:
            said = ngettext(
                "Not deleted, someone watches it: %(slugs)s. Freeze or reset it instead.",
                "Not deleted, someone watches them: %(slugs)s. Freeze or reset them instead.",
                len(kept),
            )
            self.message_user(request, said % {"slugs": ", ".join(kept)}, messages.WARNING)

    @admin.action(
        description=gettext_lazy("Freeze: refuse moves (423) and show every viewer it is frozen")
    )
    def freeze(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, lambda slug: actions.freeze(slug, True), FROZEN)

    @admin.action(description=gettext_lazy("Unfreeze: take moves again"))
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, lambda slug: actions.freeze(slug, False), UNFROZEN)

    @admin.action(description=gettext_lazy("Reset: put the logo back at the start"))
    def reset(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, actions.reset, RESET)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Board],
        act: Callable[[str], object],
        done: Promise,
    ) -> None:
        slugs = list(queryset.values_list("slug", flat=True))
        for slug in slugs:
            act(slug)
        said = done % {"count": len(slugs)}
        self.message_user(request, f"{said}: {', '.join(slugs)}", messages.SUCCESS)
