"""The boards in Django's admin: who moved them last, who watches, and the moderator's actions."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from snake import actions, channel, logos
from snake.models import Board


class BoardForm(forms.ModelForm):  # type: ignore[type-arg]  # generic in django-stubs only
    upload = forms.FileField(
        required=False,
        label="Upload a logo",
        help_text=f"PNG, WebP or JPEG, at most {logos.MAX_BYTES // 1024} KB and "
        f"{logos.MAX_SIDE} px a side (never SVG); shown scaled into the logo's box.",
    )
    bundled = forms.BooleanField(required=False, label="Use the bundled logo again")

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

    @admin.display(description="viewers now")
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
            self.message_user(
                request,
                f"Not deleted, someone watches: {', '.join(kept)}. Freeze or reset it instead.",
                messages.WARNING,
            )

    @admin.action(description="Freeze: refuse moves (423) and show every viewer it is frozen")
    def freeze(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, lambda slug: actions.freeze(slug, True), "frozen")

    @admin.action(description="Unfreeze: take moves again")
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, lambda slug: actions.freeze(slug, False), "unfrozen")

    @admin.action(description="Reset: put the logo back at the start")
    def reset(self, request: HttpRequest, queryset: QuerySet[Board]) -> None:
        self._each(request, queryset, actions.reset, "reset")

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Board],
        act: Callable[[str], object],
        done: str,
    ) -> None:
        slugs = list(queryset.values_list("slug", flat=True))
        for slug in slugs:
            act(slug)
        self.message_user(
            request, f"{len(slugs)} board(s) {done}: {', '.join(slugs)}", messages.SUCCESS
        )
