from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.errors import Invalid, Unauthenticated
from tenancy.api.throttles import TokenRateThrottle
from tenancy.services import token_issue


class TokenRequestSerializer(serializers.Serializer[dict[str, str]]):
    client_id = serializers.CharField(max_length=64)
    client_secret = serializers.CharField(max_length=256, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer[dict[str, object]]):
    access_token = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()


class TokenView(APIView):
    """`POST /v1/auth/token`: client credentials → a short-lived HS256 JWT."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = (TokenRateThrottle,)

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise Invalid({"body": ["Send a JSON object with client_id and client_secret."]})
        body = TokenRequestSerializer(data=request.data)
        if not body.is_valid():
            raise Invalid({k: [str(m) for m in v] for k, v in body.errors.items()})
        issued = token_issue(**body.validated_data)
        if issued is None:
            raise Unauthenticated("Unknown client or wrong secret.")
        return Response(
            {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            },
            headers={"Cache-Control": "no-store"},
        )
